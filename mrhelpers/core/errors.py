"""Exceptions raised by mrhelpers.

Every error names the value that was wrong, what is allowed, and the next step
for the reader. Catch :class:`MRHelpersError` to handle all of them.
"""

from __future__ import annotations

import pickle
import re
from typing import Any

_URI = re.compile(r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*")
"""A URI inside any text. The look-behind makes a match start only where a scheme can: linear time."""
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
    """``text`` with the credentials in any URI it contains replaced by ``***``.

    Masks the user-info part (``s3://KEY:SECRET@host/m`` -> ``s3://***@host/m``, also when
    the secret holds a ``/``) and the values of query parameters named like a secret
    (``X-Amz-Signature``, ``token``, ``password``, ``sig`` ...). What the registry stores is
    not changed: this is for display (frames, error messages, the run-notebooks summary).
    Non-strings pass through. Linear in the text's length (a 64 KiB URI takes microseconds).
    """
    if not isinstance(text, str) or "://" not in text:
        return text
    return _URI.sub(lambda m: _mask_one(m.group(0)), text)


class MRHelpersError(Exception):
    """Base class of every error mrhelpers raises on purpose.

    Every subclass pickles with its attributes, so an error raised in a
    ``multiprocessing`` (or joblib, Ray) worker reaches the parent intact.
    Its message never shows the credentials of a URI (see :func:`mask_credentials`).
    """

    def __init__(self, *args: object) -> None:
        super().__init__(*(mask_credentials(a) for a in args))

    def __reduce__(self) -> tuple[Any, ...]:
        # The default pickles only ``args`` and calls ``cls(*args)``, which fails for a
        # subclass whose __init__ takes other arguments: rebuild from args and attributes.
        attributes = {k: _picklable(v) for k, v in vars(self).items()}
        return (_rebuild, (type(self), tuple(_picklable(a) for a in self.args), attributes))


def _rebuild(cls: type[MRHelpersError], args: tuple[Any, ...], attributes: dict[str, Any]) -> MRHelpersError:
    """Unpickle an mrhelpers error: its message (``args``) and attributes as they were, no ``__init__`` call."""
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
    """An argument is not acceptable; nothing was written.

    Attributes:
        field: The argument's name, for example ``"version"``.
        value: The rejected value (never a secret; a URI's credentials masked).
        allowed: What would have been accepted.
    """

    def __init__(self, field: str, value: object, allowed: str) -> None:
        self.field = field
        self.value = value = mask_credentials(value)
        self.allowed = allowed
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"Invalid {field}: {shown}. Allowed: {allowed}.")


class RegistryUnavailable(MRHelpersError):
    """The Model Registry server did not answer (after bounded retries)."""


class AuthError(MRHelpersError):
    """The Model Registry (or the proxy in front of it) refused the token."""


class VersionConflict(MRHelpersError):
    """The version name is taken by a registration from another run.

    Attributes:
        model_name: The registered model's name.
        version_name: The version name that is taken.
        version_id: The id of the existing version.
        owner_run_id: The ``model_source_id`` (run id) of the existing version,
            or ``None`` when it has no lineage.
        existing_name: The existing version's exact name, when it differs from
            ``version_name`` only in letter case; else ``None``.
        tried: With ``on_conflict="bump"``: every name tried before giving up.
    """

    def __init__(
        self,
        model_name: str,
        version_name: str,
        version_id: str,
        owner_run_id: str | None,
        existing_name: str | None = None,
        tried: tuple[str, ...] = (),
    ) -> None:
        self.model_name = model_name
        self.version_name = version_name
        self.version_id = version_id
        self.owner_run_id = owner_run_id
        self.existing_name = existing_name
        self.tried = tuple(tried)
        if self.tried:
            message = (
                f"on_conflict='bump' found no free version name for model {model_name!r} after "
                f"{len(self.tried)} attempts: other writers took each of {', '.join(map(repr, self.tried))} first. "
                "Retry later, or pass a version name of this run's own (for example with the run id in it)."
            )
        else:
            owner = f"run {owner_run_id!r}" if owner_run_id else "a registration without lineage"
            same = (
                f" as {existing_name!r} (names that differ only in letter case are one name to the registry)"
                if existing_name and existing_name != version_name
                else ""
            )
            message = (
                f"Version {version_name!r} of model {model_name!r} already exists{same} "
                f"(id {version_id}, registered by {owner}). Pick a new version name, "
                "or pass on_conflict='bump' to take the next free one."
            )
        super().__init__(message)


class StackError(MRHelpersError):
    """The local stack (MariaDB + Model Registry server) could not be started or used."""


class RunFailed(MRHelpersError):
    """A pipeline run ended in a state other than success."""


class LineageWarning(UserWarning):
    """A compiled pipeline feeds lineage from a placeholder that is missing, unknown or crashes kfp.local."""
