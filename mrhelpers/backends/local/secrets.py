"""The local secret store: a file per key under ``<state dir>/secrets/<name>/<key>``.

Folders mode 0700 and files mode 0600, the shape of a Kubernetes Secret mounted as files.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from mrhelpers.backends.secrets import SecretInfo
from mrhelpers.core.errors import MRHelpersError


def local_secret_dir(state_dir: Path, name: str) -> Path:
    """The folder of local Secret ``name``."""
    return Path(state_dir) / "secrets" / name


def read_local_secret(state_dir: Path, name: str, key: str) -> str | None:
    """One value of a local Secret, or None when it does not exist."""
    try:
        return (local_secret_dir(state_dir, name) / key).read_text()
    except FileNotFoundError:
        return None


def write_local_secret(state_dir: Path, name: str, data: Mapping[str, str]) -> SecretInfo:
    """Store ``data`` in local Secret ``name`` (checked by :func:`mrhelpers.backends.secrets.check_secret`)."""
    folder = local_secret_dir(state_dir, name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder.parent, 0o700)
        os.chmod(folder, 0o700)
        changed = False
        for key, value in data.items():
            path = folder / key
            if path.exists() and path.read_text() == value:
                os.chmod(path, 0o600)
                continue
            tmp = path.with_name(f".{key}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
            os.replace(tmp, path)
            changed = True
        keys = {p.name: p.stat().st_size for p in sorted(folder.iterdir()) if not p.name.startswith(".")}
    except OSError as exc:
        raise MRHelpersError(f"Cannot write the local secret store at {folder}: {exc.strerror}.") from exc
    return SecretInfo(name=name, where=str(folder), keys=keys, changed=changed)
