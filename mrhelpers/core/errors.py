"""mrhelpers' exceptions (catch :class:`MRHelpersError` for all of them) and the masking of credentials in URIs."""

from __future__ import annotations

import pickle
import re
from typing import Any

# A URI inside any text; the look-behind starts a match only where a scheme can (linear time).
_URI = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*")
_SECRET_NAMES = ("signature", "token", "secret", "password", "passwd", "credential", "accesskey", "access_key", "sig")
MASK = "***"


def _mask_one(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    end = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, end)
    if at >= 0 and (":" in rest[:at] or "/" not in rest[:at]):  # user-info, also with a "/" in its secret
        rest = MASK + rest[at:]
    path, sep, query = rest.partition("?")
    if sep:
        query, hash_, fragment = query.partition("#")
        params = []
        for param in re.split(r"([&;])", query):
            key, eq, _value = param.partition("=")
            secret = eq and any(n in key.lower().replace("-", "") for n in _SECRET_NAMES)
            params.append(f"{key}={MASK}" if secret else param)
        rest = path + "?" + "".join(params) + hash_ + fragment
    return f"{scheme}://{rest}"


def mask_credentials(text: Any) -> Any:
    """``text`` with any URI's user-info and secret-named query values shown as ``***``; non-strings pass through."""
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URI.sub(lambda m: _mask_one(m.group(0)), text)


class MRHelpersError(Exception):
    """Base class of mrhelpers' errors: they pickle with their attributes and never show a URI's credentials."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_credentials(a) for a in args))

    def __reduce__(self) -> tuple[Any, ...]:
        # The default calls ``cls(*args)``, which fails for a subclass taking other arguments.
        attributes = {k: _picklable(v) for k, v in vars(self).items()}
        return (_rebuild, (type(self), tuple(_picklable(a) for a in self.args), attributes))


def _rebuild(cls: type[MRHelpersError], args: tuple[Any, ...], attributes: dict[str, Any]) -> MRHelpersError:
    """An mrhelpers error from its message (``args``) and attributes, without calling ``__init__``."""
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
    """An argument is not acceptable (nothing was written): ``field``, ``value`` (masked) and what is ``allowed``."""

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field, self.value, self.allowed = field, mask_credentials(value), allowed
        shown = repr(self.value) if len(repr(self.value)) <= 80 else repr(self.value)[:77] + "..."
        super().__init__(f"Invalid {field}: {shown}. Allowed: {allowed}.")


class RegistryUnavailable(MRHelpersError):
    """The Model Registry server did not answer (after bounded retries)."""


class AuthError(MRHelpersError):
    """The Model Registry (or the proxy in front of it) refused the token."""


class VersionConflict(MRHelpersError):
    """The version name is taken by another run's (``owner_run_id``) version ``version_id``, or bump ``tried`` all."""

    def __init__(
        self, model_name: str, version_name: str, version_id: str, owner_run_id: str | None,
        existing_name: str | None = None, tried: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        self.model_name, self.version_name, self.version_id = model_name, version_name, version_id
        self.owner_run_id, self.existing_name, self.tried = owner_run_id, existing_name, tuple(tried)
        owner = f"run {owner_run_id!r}" if owner_run_id else "a registration without lineage"
        same = f" as {existing_name!r} (names that differ only in letter case are one name to the registry)"
        super().__init__(
            f"on_conflict='bump' found no free version name for model {model_name!r} after {len(self.tried)} "
            f"attempts: other writers took each of {', '.join(map(repr, self.tried))} first. Retry later, or pass "
            "a version name of this run's own (for example with the run id in it)."
            if self.tried
            else f"Version {version_name!r} of model {model_name!r} already exists"
            f"{same if existing_name and existing_name != version_name else ''} (id {version_id}, registered by "
            f"{owner}). Pick a new version name, or pass on_conflict='bump' to take the next free one."
        )


class StackError(MRHelpersError):
    """The local stack (MariaDB + Model Registry server) could not be started or used."""


class RunFailed(MRHelpersError):
    """A pipeline run ended in a state other than success."""


class LineageWarning(UserWarning):
    """A compiled pipeline feeds lineage from a placeholder that is missing, unknown or crashes kfp.local."""
