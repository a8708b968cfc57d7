"""One status line for a long wait: updated in place in a notebook or terminal; in a log, its start and end."""

from __future__ import annotations

import sys
import time
from typing import Any


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


class Progress:
    """``with Progress("Starting MariaDB") as p: ... p.update("3 s")``; ``quiet=True`` shows nothing."""

    def __init__(self, what: str, *, quiet: bool = False) -> None:
        self.what, self.start, self._handle = what, time.monotonic(), None
        self._mode = "quiet" if quiet else "kernel" if _in_kernel() else "tty" if sys.stdout.isatty() else "log"

    def _show(self, text: str, final: bool = False, line: bool = False) -> None:
        if self._mode == "kernel":
            from IPython.display import display

            if self._handle is None:
                self._handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": text}, raw=True)
        elif self._mode == "tty":
            sys.stdout.write("\r\033[K" + text + ("\n" if final else ""))
            sys.stdout.flush()
        elif self._mode == "log" and (final or line or self._handle is None):
            print(text, flush=True)
            self._handle = True

    def __enter__(self) -> Progress:
        self._show(f"{self.what} ...")
        return self

    def update(self, detail: str) -> None:
        """Show ``detail`` after the elapsed seconds (in a notebook or terminal only)."""
        self._show(f"{self.what} ... {time.monotonic() - self.start:.0f} s {detail}".rstrip())

    def milestone(self, detail: str) -> None:
        """Like :meth:`update`, and printed in plain logs (CI) too: for changes worth a line."""
        self._show(f"{self.what} ... {time.monotonic() - self.start:.0f} s {detail}".rstrip(), line=True)

    def done(self, result: str = "done") -> None:
        self._show(f"{self.what}: {result} ({time.monotonic() - self.start:.1f} s)", final=True)
        self._handle = "done"

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._handle != "done":
            self.done("failed" if exc_type else "done")
