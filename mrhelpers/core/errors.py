"""Exceptions raised by mrhelpers.

Every error names the value that was wrong, what is allowed, and the next step
for the reader. Catch :class:`MRHelpersError` to handle all of them.
"""

from __future__ import annotations

import pickle
from typing import Any


class MRHelpersError(Exception):
    """Base class of every error mrhelpers raises on purpose.

    Every subclass pickles with its attributes, so an error raised in a
    ``multiprocessing`` (or joblib, Ray) worker reaches the parent intact.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickles only ``args`` and calls ``cls(*args)``, which fails for a
        # subclass whose __init__ takes other arguments: rebuild from args and attributes.
        attributes = {k: _picklable(v) for k, v in vars(self).items()}
        return (_rebuild, (type(self), tuple(_picklable(a) for a in self.args), attributes))


def _rebuild(cls: type[MRHelpersError], args: tuple[Any, ...], attributes: dict[str, Any]) -> MRHelpersError:
    """Unpickle an mrhelpers error: its message (``args``) and attributes as they were, no ``__init__`` call."""
    exc = cls.__new__(cls, *args)
    Exception.__init__(exc, *args)
    vars(exc).update(attributes)
    return exc


def _picklable(value: object) -> object:
    """``value`` if it pickles, else its repr (an error must always cross a process boundary)."""
    try:
        pickle.dumps(value)
    except Exception:
        return repr(value)
    return value


class InvalidInput(MRHelpersError, ValueError):
    """An argument is not acceptable; nothing was written.

    Attributes:
        field: The argument's name, for example ``"version"``.
        value: The rejected value (never a secret).
        allowed: What would have been accepted.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"Invalid {field}: {shown}. Allowed: {allowed}.")


class RegistryUnavailable(MRHelpersError):
    """The Model Registry server did not answer (after bounded retries)."""


class AuthError(MRHelpersError):
    """The Model Registry (or the proxy in front of it) refused the token."""


class VersionConflict(MRHelpersError):
    """The version name is taken by a registration from another run.

    Attributes:
        model_name: The registered model's name.
        version_name: The version name that is taken.
        version_id: The id of the existing version.
        owner_run_id: The ``model_source_id`` (run id) of the existing version,
            or ``None`` when it has no lineage.
        existing_name: The existing version's exact name, when it differs from
            ``version_name`` only in letter case; else ``None``.
        tried: With ``on_conflict="bump"``: every name tried before giving up.
    """

    def __init__(
        self,
        model_name: str,
        version_name: str,
        version_id: str,
        owner_run_id: str | None,
        existing_name: str | None = None,
        tried: tuple[str, ...] = (),
    ) -> None:
        self.model_name = model_name
        self.version_name = version_name
        self.version_id = version_id
        self.owner_run_id = owner_run_id
        self.existing_name = existing_name
        self.tried = tuple(tried)
        if self.tried:
            message = (
                f"on_conflict='bump' found no free version name for model {model_name!r} after "
                f"{len(self.tried)} attempts: other writers took each of {', '.join(map(repr, self.tried))} first. "
                "Retry later, or pass a version name of this run's own (for example with the run id in it)."
            )
        else:
            owner = f"run {owner_run_id!r}" if owner_run_id else "a registration without lineage"
            same = (
                f" as {existing_name!r} (names that differ only in letter case are one name to the registry)"
                if existing_name and existing_name != version_name
                else ""
            )
            message = (
                f"Version {version_name!r} of model {model_name!r} already exists{same} "
                f"(id {version_id}, registered by {owner}). Pick a new version name, "
                "or pass on_conflict='bump' to take the next free one."
            )
        super().__init__(message)


class StackError(MRHelpersError):
    """The local stack (MariaDB + Model Registry server) could not be started or used."""


class RunFailed(MRHelpersError):
    """A pipeline run ended in a state other than success."""


class LineageWarning(UserWarning):
    """A compiled pipeline feeds lineage from a placeholder that is missing, unknown or crashes kfp.local."""
