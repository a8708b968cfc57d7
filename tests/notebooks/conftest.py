"""The tutorial, run once per test session for every test in this folder."""

from pathlib import Path

import localstack  # setup/localstack.py
import pytest
from run_notebooks import run_notebooks

from mrhelpers import ensure_secret
from mrhelpers.core.settings import Settings, default_bin_dir

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "build" / "test-notebooks"
TOKEN = "tutorial-known-token-5f0c9e8a1b2d"


@pytest.fixture(scope="session")
def tutorial(tmp_path_factory):
    """The tutorial run twice, as by default: a token-checking proxy in front of the registry, here with a known token.

    Returns the second run's results and the settings of the stack notebook 00 started.
    """
    import os

    state = tmp_path_factory.mktemp("tutorial-state")
    keys = ("MRH_STATE_DIR", "MRH_AUTH", "MRH_REGISTRY_PORT", "MRH_DB_PORT", "MRH_REGISTRY_URL", "MRH_TOKEN")
    saved = {k: os.environ.get(k) for k in keys}
    for key in keys:
        os.environ.pop(key, None)
    os.environ["MRH_STATE_DIR"] = str(state)  # MRH_AUTH unset: run_notebooks turns the token check on by default
    settings = Settings(state_dir=state, bin_dir=default_bin_dir())
    ensure_secret(settings, settings.secret_name, {"token": TOKEN})
    try:
        first = run_notebooks(OUT / "first-run", {"backend": "local"}, quiet=True)
        second = run_notebooks(OUT, {"backend": "local"}, quiet=True)
        yield first, second, Settings.from_env(state_dir=state)
    finally:
        localstack.down(settings, quiet=True)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
