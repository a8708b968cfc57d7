"""Shared fixtures. Tiers are chosen by folder; each test module sets its marker.

setup/ goes on sys.path, so tests import the environment's scripts by name: ``import localstack``
(setup/localstack.py), ``import run_notebooks``, ``import report``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "setup"))

import localstack  # noqa: E402 - needs setup/ on sys.path

from mrhelpers.core.settings import Settings, default_bin_dir  # noqa: E402

TIERS = ("unit", "integration", "notebooks", "kube", "ui")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tier is the first folder under tests/; below it, tests follow the package's layers
    (``core/``, ``authoring/``, ``backends/local/``, ``backends/cluster/``, ``tutorial/``)."""
    for item in items:
        path = Path(str(item.fspath)).resolve()
        parts = path.relative_to(ROOT / "tests").parts if path.is_relative_to(ROOT / "tests") else (path.parent.name,)
        if parts[0] in TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))


def stack_settings(state_dir: Path) -> Settings:
    """Settings for a stack of the test's own, in ``state_dir``, on ports it picks."""
    return Settings(backend="local", state_dir=state_dir, bin_dir=default_bin_dir(), author="tests")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory):
    """A real local stack (MariaDB + Model Registry server) with a fresh database, for this session."""
    settings = stack_settings(tmp_path_factory.mktemp("stack"))
    try:
        status = localstack.up(settings, quiet=True)
        assert status.ok, str(status)
        yield Settings.from_env(state_dir=settings.state_dir, bin_dir=settings.bin_dir, author="tests")
    finally:
        localstack.down(settings, quiet=True)
