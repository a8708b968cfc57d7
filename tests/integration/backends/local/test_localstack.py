"""The local stack's life cycle, with real MariaDB and Model Registry processes."""

import json
import socket
from pathlib import Path

import localstack  # setup/localstack.py
import pytest

from mrhelpers import Lineage, StackError, connect, register_version, versions_frame
from mrhelpers.core.settings import Settings
from tests.conftest import stack_settings


def test_status_of_the_session_stack(stack):
    s = localstack.status(stack)
    assert s.ok and s.registry_url == stack.registry_url
    assert {c.name for c in s.components} == {"mariadb", "registry"}


def test_up_again_keeps_the_same_processes(stack):
    before = json.loads((stack.state_dir / "state.json").read_text())
    after_status = localstack.up(stack, quiet=True)
    after = json.loads((stack.state_dir / "state.json").read_text())
    assert after_status.ok
    assert (after["mariadb"]["pid"], after["registry"]["pid"]) == (before["mariadb"]["pid"], before["registry"]["pid"])


def test_server_args_hold_no_password(stack):
    state = json.loads((stack.state_dir / "state.json").read_text())
    password = (stack.state_dir / "mariadb" / "password").read_text().strip()
    for part in ("mariadb", "registry"):
        cmdline = Path(f"/proc/{state[part]['pid']}/cmdline").read_bytes().decode()
        assert password not in cmdline


def test_down_then_up_keeps_data_and_stale_pids_are_replaced(tmp_path):
    settings = stack_settings(tmp_path / "own")
    try:
        localstack.up(settings, quiet=True)
        s = Settings.from_env(state_dir=settings.state_dir, bin_dir=settings.bin_dir)
        register_version(
            connect(s),
            "kept",
            "v1",
            "s3://b/m",
            model_format_name="f",
            model_format_version="1",
            lineage=Lineage.for_kfp_run("r", "n", "local"),
        )
        assert sorted(localstack.down(settings, quiet=True)) == ["mariadb", "registry"]
        assert not localstack.status(settings).ok
        # a stale pid (the process is gone) must not stop `up`
        state = json.loads((settings.state_dir / "state.json").read_text())
        state["registry"]["pid"] = 2**22 - 1
        (settings.state_dir / "state.json").write_text(json.dumps(state))
        assert localstack.up(settings, quiet=True).ok
        s = Settings.from_env(state_dir=settings.state_dir, bin_dir=settings.bin_dir)
        assert list(versions_frame(connect(s), "kept")["version"]) == ["v1"]
    finally:
        localstack.down(settings, quiet=True)
    assert localstack.down(settings, quiet=True) == []


def test_port_in_use_is_refused_with_the_port(tmp_path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        settings = stack_settings(tmp_path / "busy")
        try:
            with pytest.raises(StackError, match=str(port)):
                localstack.up(settings, db_port=port, quiet=True)
        finally:
            localstack.down(settings, quiet=True)


def test_the_command_line_reports_and_says_what_to_run(stack, tmp_path):
    """`make status` runs this script: exit 0 and the registry's URL when up; exit 3 and `make up` when not."""
    import os
    import subprocess
    import sys

    script = [sys.executable, str(Path(localstack.__file__)), "status"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRH_")}
    up = subprocess.run(script, env={**env, "MRH_STATE_DIR": str(stack.state_dir)}, capture_output=True, text=True)
    assert up.returncode == 0 and stack.registry_url in up.stdout and "up" in up.stdout.splitlines()[0]
    empty = subprocess.run(script, env={**env, "MRH_STATE_DIR": str(tmp_path)}, capture_output=True, text=True)
    assert empty.returncode == 3 and "NOT fully up" in empty.stdout and "`make up`" in empty.stdout
