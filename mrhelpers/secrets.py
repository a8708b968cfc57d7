"""Notebook 01: keep the registry token in a Secret.

Local backend: a file store under ``<state dir>/secrets/<name>/<key>``, folders
mode 0700 and files mode 0600, the same shape as a Kubernetes Secret mounted as
files. Cluster backend: a Kubernetes Secret (issue: the cluster backend).
Values are never printed; results report only key names and lengths.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets as _secrets
from collections.abc import Mapping
from pathlib import Path

from mrhelpers.errors import InvalidInput, MRHelpersError
from mrhelpers.settings import SECRET_TOKEN_KEY, Settings

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclasses.dataclass(frozen=True)
class SecretInfo:
    """What :func:`ensure_secret` did, without any value.

    Attributes:
        name: The Secret's name.
        where: The folder (local) or ``namespace/name`` (cluster).
        keys: The keys it holds, each with the length of its value.
        changed: False when the Secret already held exactly these values.
    """

    name: str
    where: str
    keys: dict[str, int]
    changed: bool


def _check(name: str, data: Mapping[str, str]) -> None:
    if not isinstance(name, str) or not _NAME.match(name) or len(name) > 253:
        raise InvalidInput(
            "secret name", name, "a DNS-1123 name: lowercase letters, digits and '-', at most 253 characters"
        )
    if not data:
        raise InvalidInput("secret data", "{}", "at least one key, for example {'token': '...'}")
    for key, value in data.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise InvalidInput("secret key", key, "letters, digits, '-', '_' and '.'")
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"secret value for key {key!r}", "<hidden>", "a non-empty string")


def local_secret_dir(state_dir: Path, name: str) -> Path:
    """The folder of local Secret ``name``."""
    return Path(state_dir) / "secrets" / name


def read_local_secret(state_dir: Path, name: str, key: str) -> str | None:
    """One value of a local Secret, or None when it does not exist."""
    try:
        return (local_secret_dir(state_dir, name) / key).read_text()
    except FileNotFoundError:
        return None


def choose_token(settings: Settings, given: str = "") -> str:
    """The token to store: ``given`` if set, else the one the store holds, else a new random one.

    A local registry enforces no token, so a random one is enough to exercise the
    path a cluster uses; on a cluster, pass the token your registry expects.
    """
    if given:
        return given
    existing = read_local_secret(settings.state_dir, settings.secret_name, SECRET_TOKEN_KEY)
    return existing or _secrets.token_urlsafe(32)


def ensure_secret(settings: Settings, name: str, data: Mapping[str, str], *, _refresh: bool = True) -> SecretInfo:
    """Create the Secret ``name`` holding ``data``, or update it; idempotent.

    Args:
        settings: Chooses the backend (local file store or Kubernetes).
        name: The Secret's name, for example ``model-registry-auth``.
        data: Key to value, for example ``{"token": token}``. Keys that the
            Secret holds but ``data`` does not name are left as they are.

    Returns:
        A :class:`SecretInfo` with key names and value lengths, never values.
        Locally, a running token-checking proxy (``up(auth=True)``) is made to
        accept the new token at once.

    Raises:
        InvalidInput: For a bad name, key or empty value.
        MRHelpersError: When the store cannot be written.
    """
    _check(name, data)
    if settings.backend == "cluster":
        raise MRHelpersError(
            "ensure_secret for backend='cluster' is not built yet. Create the Secret with "
            f"`kubectl create secret generic {name} --from-literal=token=... -n {settings.namespace}`."
        )
    folder = local_secret_dir(settings.state_dir, name)
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
    if changed and _refresh and name == settings.secret_name:
        from mrhelpers.localstack import refresh_proxy

        refresh_proxy(settings)
    return SecretInfo(name=name, where=str(folder), keys=keys, changed=changed)
