"""`make lab` serves JupyterLab, as root too (Jupyter refuses root without --allow-root)."""

import os
import shlex
import signal
import socket
import subprocess
import time
import urllib.request

from tests.notebooks.conftest import ROOT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_make_lab_serves_lab(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # also when run from `make test`
    dry = subprocess.run(["make", "-n", "--no-print-directory", "lab"], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=True)  # fmt: skip
    command = shlex.split([line for line in dry.stdout.splitlines() if "jupyter lab" in line][-1])
    assert command[1:3] == ["lab", "--ip=127.0.0.1"] and command[-1] == "notebooks/"
    assert ("--allow-root" in command) == (os.getuid() == 0)
    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path), "JUPYTER_CONFIG_DIR": str(tmp_path / "config")}
    with open(tmp_path / "lab.log", "w") as log:
        proc = subprocess.Popen(
            [*command[:-1], f"--port={port}", "--IdentityProvider.token=lab-test", command[-1]],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True,
        )  # fmt: skip
    try:
        body, deadline = "", time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token=lab-test", timeout=5) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "lab.log").read_text()[-2000:]
        assert "JupyterLab" in body
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
