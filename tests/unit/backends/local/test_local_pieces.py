"""Local stack, secret store, records and notebooks: the parts that need no server."""

import json
import os
import socket
import stat
import subprocess
from pathlib import Path

import localstack  # setup/localstack.py
import pytest
from run_notebooks import CLEANUP, TUTORIAL, notebook_parameters, notebooks_dir, pick_notebooks, run_notebooks

from mrhelpers import InvalidInput, Settings, StackError, ensure_secret, read_records
from mrhelpers.core.records import MIME

ROOT = Path(__file__).resolve().parents[4]


def test_port_in_use_is_named():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(StackError, match=rf"Port {port} .* is in use.*MRH_REGISTRY_PORT"):
            localstack._choose_port("Model Registry server", port, None, "MRH_REGISTRY_PORT")


def test_recorded_port_is_reused_when_free():
    free = localstack.free_port()
    assert localstack._choose_port("x", None, free, "E") == free


def test_dead_or_foreign_pid_is_not_alive():
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not localstack._alive(proc.pid, "true")
    assert not localstack._alive(os.getpid(), "mariadbd")  # alive, but not the program we started
    own_name = Path("/proc/self/stat").read_text().partition("(")[2].rpartition(")")[0]
    assert localstack._alive(os.getpid(), own_name)


def test_status_of_a_stack_never_started(tmp_path):
    s = localstack.status(Settings(state_dir=tmp_path))
    assert not s.ok
    assert [c.running for c in s.components] == [False, False]
    assert "NOT fully up" in str(s)


def test_missing_go_gets_next_step(tmp_path, monkeypatch):
    monkeypatch.setattr(localstack, "_find_go", lambda: None)
    with pytest.raises(StackError, match=r"Go is not installed.*go.dev"):
        localstack.install_server(Settings(state_dir=tmp_path, bin_dir=tmp_path / "bin"), quiet=True)


def test_missing_mariadb_names_make_system_and_installs_nothing(monkeypatch):
    monkeypatch.setattr(localstack, "_find", lambda name: None)
    with pytest.raises(StackError, match=r"MariaDB is not installed.*`make system`"):
        localstack.find_mariadb()
    assert "apt-get" not in Path(localstack.__file__).read_text()  # setup/install-system.sh installs packages


@pytest.mark.parametrize(
    "stored", ["pa'ss--word-1234567", "shortpw1", "back\\slash-password-123", "sp ace-password-1234"]
)
def test_a_stored_database_password_that_could_break_sql_is_refused(tmp_path, stored):
    (tmp_path / "mariadb").mkdir()
    (tmp_path / "mariadb" / "password").write_text(stored)
    with pytest.raises(StackError, match="written into SQL, so it is refused") as info:
        localstack._db_password(Settings(state_dir=tmp_path))
    assert stored not in str(info.value)


def test_a_new_database_password_is_hex_and_private(tmp_path):
    value = localstack._db_password(Settings(state_dir=tmp_path))
    path = tmp_path / "mariadb" / "password"
    assert len(value) == 48 and int(value, 16) >= 0 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert localstack._db_password(Settings(state_dir=tmp_path)) == value  # kept


def test_bad_port_variable(monkeypatch):
    monkeypatch.setenv("MRH_REGISTRY_PORT", "eighty")
    with pytest.raises(StackError, match="MRH_REGISTRY_PORT='eighty'"):
        localstack._env_int("MRH_REGISTRY_PORT")


def test_secret_store_modes_and_idempotence(tmp_path):
    s = Settings(state_dir=tmp_path)
    info = ensure_secret(s, "model-registry-auth", {"token": "t0ps3cret"})
    path = tmp_path / "secrets" / "model-registry-auth" / "token"
    assert path.read_text() == "t0ps3cret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert info.changed and info.keys == {"token": 9}
    assert "t0ps3cret" not in repr(info)
    assert not ensure_secret(s, "model-registry-auth", {"token": "t0ps3cret"}).changed
    assert ensure_secret(s, "model-registry-auth", {"token": "other"}).changed


@pytest.mark.parametrize(
    ("name", "data"), [("Bad_Name", {"token": "x"}), ("ok", {}), ("ok", {"token": ""}), ("ok", {"bad key": "x"})]
)
def test_secret_store_refuses_bad_input(tmp_path, name, data):
    with pytest.raises(InvalidInput):
        ensure_secret(Settings(state_dir=tmp_path), name, data)
    assert not (tmp_path / "secrets").exists()


def test_records_round_trip(tmp_path):
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [{"output_type": "display_data", "data": {MIME: {"name": "run_id", "value": "1"}}}],
            },
            {
                "cell_type": "code",
                "outputs": [
                    {"output_type": "display_data", "data": {MIME: {"name": "run_id", "value": "2"}}},
                    {"output_type": "stream", "text": "x"},
                ],
            },
            {"cell_type": "markdown", "source": "no outputs"},
        ]
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert read_records(path) == {"run_id": "2"}


def test_every_notebook_has_a_parameters_cell_first_with_local_default():
    for name in TUTORIAL:
        nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
        tagged = [i for i, c in enumerate(nb["cells"]) if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert tagged == [1], f"{name}: parameters cell at {tagged}"
        assert nb["cells"][0]["cell_type"] == "markdown" and "".join(nb["cells"][0]["source"]).startswith("# ")
        assert 'backend = "local"' in "".join(nb["cells"][1]["source"])
        assert "backend" in notebook_parameters(notebooks_dir() / f"{name}.ipynb")


def test_committed_notebooks_follow_the_output_policy():
    """Outputs only in cells marked NBVAL_CHECK_OUTPUT (refreshed by tests/refresh_notebook_outputs.py)."""
    from mrhelpers.core.records import MIME

    marked = 0
    for name in [*TUTORIAL, CLEANUP]:
        nb = json.loads((notebooks_dir() / f"{name}.ipynb").read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code":
                continue
            checked = "# NBVAL_CHECK_OUTPUT" in "".join(cell["source"])
            marked += checked
            assert (cell["execution_count"] is not None) == checked, f"{name}: execution counts only in checked cells"
            assert bool(cell["outputs"]) == checked, f"{name}: outputs only (and always) in NBVAL_CHECK_OUTPUT cells"
            for output in cell["outputs"]:
                assert output["output_type"] != "error" and MIME not in output.get("data", {})
    assert marked >= 4


def test_unknown_notebook_parameter_fails_loudly(tmp_path):
    with pytest.raises(InvalidInput, match="bakend"):
        run_notebooks(tmp_path, {"bakend": "local"}, quiet=True)
    assert not list(tmp_path.iterdir())  # nothing ran


def test_pick_notebooks_by_number_or_name_in_the_order_given():
    assert pick_notebooks("") == TUTORIAL
    assert pick_notebooks("05, 00,99") == ("05_inspect_registry", "00_cluster_setup", "99_cleanup")
    assert pick_notebooks(["04_submit_run"]) == ("04_submit_run",)
    for bad in ("0", "08", "submit"):
        with pytest.raises(InvalidInput, match="a number or name from 00_cluster_setup"):
            pick_notebooks(bad)
