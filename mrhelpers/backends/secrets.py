"""The registry token's Secret, on either backend: the checks of its name and data, and the calls.

Values are never printed: results report only key names and lengths. Storing the same values
again reports ``changed=False``.
"""

from __future__ import annotations

import dataclasses
import re
import secrets as _secrets
from collections.abc import Mapping

from mrhelpers.core.errors import InvalidInput
from mrhelpers.core.settings import SECRET_TOKEN_KEY, Settings

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


@dataclasses.dataclass(frozen=True)
class SecretInfo:
    """What :func:`ensure_secret` did, without any value: ``where`` is the folder (local) or
    ``namespace/name`` (cluster), ``keys`` the length of each value, ``changed`` False when the
    Secret already held exactly these values."""

    name: str
    where: str
    keys: dict[str, int]
    changed: bool


def check_secret(name: str, data: Mapping[str, str]) -> None:
    """Raise :class:`InvalidInput` unless ``name`` is a DNS-1123 name and ``data`` non-empty strings by key."""
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


def choose_token(settings: Settings, given: str = "") -> str:
    """The token to store: ``given`` if set, else the one the store holds, else a new random one
    (enough where the registry checks none; on a cluster, pass the token your registry expects)."""
    if given:
        return given
    existing = settings.backend_impl().read_secret(settings, settings.secret_name).get(SECRET_TOKEN_KEY)
    return existing or _secrets.token_urlsafe(32)


def ensure_secret(settings: Settings, name: str, data: Mapping[str, str]) -> SecretInfo:
    """Create the Secret ``name`` holding ``data``, or update it; idempotent.

    Local: a file per key under ``<state dir>/secrets/<name>/`` (mode 0600). Cluster: an Opaque
    Kubernetes Secret in ``settings.namespace``, through your kubeconfig or the pod's ServiceAccount.

    Keys that the Secret holds but ``data`` (e.g. ``{"token": token}``) does not name are left as
    they are. Returns key names and value lengths, never values.

    Raises:
        InvalidInput: For a bad name, key or empty value.
        MRHelpersError: When the store cannot be written.
    """
    check_secret(name, data)
    return settings.backend_impl().ensure_secret(settings, name, data)
