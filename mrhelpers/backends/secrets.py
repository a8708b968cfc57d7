"""The registry token's Secret on either backend; results give key names and lengths, never values."""

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
    """What :func:`ensure_secret` did: where, each value's length, ``changed`` (False: it held these values)."""

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
    """Create or update Secret ``name`` with ``data`` (other keys stay); InvalidInput for a bad name, key or value."""
    check_secret(name, data)
    return settings.backend_impl().ensure_secret(settings, name, data)
