"""Talk to the Model Registry: connect, lineage, and safe registration.

This module is what a pipeline component imports, so it stays light: no kfp,
no pandas. It uses the pinned ``model-registry`` client (see setup/versions.env).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import os
import random
import re
import time
import unicodedata
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

from mrhelpers.core import rest
from mrhelpers.core.errors import InvalidInput, VersionConflict
from mrhelpers.core.rest import RegistrySession, Version, attach, session_for, status_of
from mrhelpers.core.settings import Settings

if TYPE_CHECKING:
    from model_registry import ModelRegistry

T = TypeVar("T")
ON_CONFLICT = ("error", "bump")
RESERVED_PREFIX = "mrh_"
"""Custom-property keys mrhelpers keeps for itself; user metadata may not use them."""
SOURCE_ID_KEY = rest.SOURCE_ID_KEY
"""Set on a version at its creation to its ``lineage.id``: tells whose a half-written version is."""
STAGE_KEY = "mrh_stage"
"""On a version: the stage it was last given (see :mod:`mrhelpers.core.lifecycle`)."""
ARTIFACT_KEY = "mrh_artifact"
"""Set on a version at its creation: its ModelArtifact's fields as JSON (see :func:`artifact_copy`)."""
PRODUCTION_KEY = "mrh_production_version"
"""On a RegisteredModel: the id of its production version, ``""`` for none (see :mod:`mrhelpers.core.lifecycle`)."""
MAX_NAME = 200
"""Longest model, version or lineage name. The server keeps names in 255-character
columns with an id prefix (``"<parent id>:<name>"``), so 200 leaves room for ids."""
MAX_KEY = 255
"""Longest metadata key (the server's property-name column)."""
MAX_VALUE_BYTES = 4 * 1024 * 1024
"""Largest metadata string (UTF-8 bytes) or description; larger ones are refused."""
MAX_METADATA_BYTES = 16 * 1024 * 1024
"""Largest metadata plus description of one version, as the client sends it (JSON, non-ASCII escaped).
Half the local proxy's ``client_max_body_size`` (32 MiB) and the MariaDB server's default
``max_allowed_packet`` (16 MiB is what one statement may carry; values are written one per row)."""
MAX_DEPTH = 100
"""Deepest nesting of a dict or list metadata value."""
MAX_URI_BYTES = 65_535
"""Longest URI in UTF-8 bytes: the server keeps it in a ``TEXT`` column (64 KiB - 1)."""
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATORS = "\u2028\u2029"
"""Line and paragraph separators: they break a name across lines where it is shown."""
BUMP_ATTEMPTS = 64
"""Most version names ``on_conflict="bump"`` tries before it gives up naming them."""
MAX_INT = 999_999_999
"""Largest integer metadata value (in size): the pinned client's wire format takes at most 9 digits."""


# --------------------------------------------------------------------------- lineage


@dataclasses.dataclass(frozen=True)
class Lineage:
    """Where a model version came from, stored as the artifact's ``model_source_*`` fields.

    Attributes:
        kind: ``model_source_kind``, for example ``"kfp"``.
        cls: ``model_source_class``, for example ``"pipelinerun"``.
        group: ``model_source_group``: the namespace the run ran in.
        id: ``model_source_id``: the run id. Registration is retry-safe per id.
        name: ``model_source_name``: the run's human-readable name.
    """

    kind: str
    cls: str
    group: str
    id: str
    name: str

    @classmethod
    def for_kfp_run(cls, run_id: str, run_name: str, namespace: str) -> Lineage:
        """Lineage of a Kubeflow Pipelines run (the project's convention).

        Args:
            run_id: From ``dsl.PIPELINE_JOB_ID_PLACEHOLDER``.
            run_name: From ``dsl.PIPELINE_JOB_NAME_PLACEHOLDER``.
            namespace: The pod's namespace (``local`` for kfp.local runs).
        """
        return cls(kind="kfp", cls="pipelinerun", group=namespace, id=run_id, name=run_name)

    def as_fields(self) -> dict[str, str]:
        """The five ``model_source_*`` keyword arguments of a ModelArtifact."""
        return {
            "model_source_kind": self.kind,
            "model_source_class": self.cls,
            "model_source_group": self.group,
            "model_source_id": self.id,
            "model_source_name": self.name,
        }


@dataclasses.dataclass(frozen=True)
class RegistrationResult:
    """What :func:`register_version` wrote or found.

    Attributes:
        model_id: The RegisteredModel's id.
        version_id: The ModelVersion's id.
        artifact_id: The ModelArtifact's id.
        version_name: The version's name (differs from the one asked for after a bump).
        created: True for the one call that completed the version (wrote its artifact, the last
            of its writes); False for every other call that returns it, such as a retry from the same run.
        model_name: The RegisteredModel's name.
    """

    model_id: str
    version_id: str
    artifact_id: str
    version_name: str
    created: bool
    model_name: str


# --------------------------------------------------------------------------- connect

_PADDED_HINT = (
    "a token without surrounding spaces or newlines (mrhelpers refuses it rather than guess which characters "
    "belong to it). Rewrite it without them: MRH_TOKEN, or the local Secret {secret!r} with "
    "mrhelpers.ensure_secret(settings, {secret!r}, {{'token': TOKEN}}) (a file written with `echo` ends in a newline; "
    "use `printf %s`)"
)


def connect(settings: Settings, *, retries: int = 5, backoff: float = 0.5) -> ModelRegistry:
    """Connect to the Model Registry that ``settings`` point at.

    It first asks the server for one model over mrhelpers' own session, so every failure is one of
    the package's errors, within ``rest.MAX_WAIT_S`` (30 s) even against a server that never answers;
    then it builds the client. In a forked child it gives the client an event loop of its own (the one
    inherited from the parent hangs the client's first call).

    Args:
        settings: Uses ``registry_url`` (scheme and host, no path or query), ``author`` and ``token``.
            Without a token, the client's own fallback is used: the file named by ``KF_PIPELINES_SA_TOKEN_PATH``,
            else a pod's service-account token.
        retries: Attempts while the server does not answer (default 5), here and in every later
            call mrhelpers makes through this client; every request gives up after ``rest.MAX_WAIT_S``.
        backoff: First wait between attempts in seconds, doubled each time (default 0.5).

    Returns:
        A ``model_registry.ModelRegistry`` client.

    Raises:
        InvalidInput: The URL has no ``http://``/``https://`` scheme, no host, or a path, query or fragment.
        RegistryUnavailable: The server did not answer after ``retries`` attempts or ``rest.MAX_WAIT_S``.
        AuthError: The server (or its proxy) refused the token (HTTP 401/403) or redirected (a sign-in page).
        RegistryHttpError: The server answered with an error, or with something that is not JSON.
    """
    from model_registry import ModelRegistry

    url = settings.registry_url
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput(
            "registry_url", url, "an http:// or https:// URL with a host, for example http://127.0.0.1:8080"
        )
    if parsed.path.strip("/") or parsed.query or parsed.fragment or parsed.params:
        raise InvalidInput(
            "registry_url", url,
            f"the server's address only, scheme, host and port ({parsed.scheme}://{parsed.netloc}): the client "
            f"adds {rest.api_path()} itself and drops any path, so every request would miss",
        )  # fmt: skip
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    token = settings.token.reveal() or None
    if token is not None and token != token.strip():
        raise InvalidInput("token", "<hidden>", _PADDED_HINT.format(secret=settings.secret_name))
    token = token or _pod_token()

    hint = settings.backend_impl().unreachable_hint(settings.secret_name)
    session = RegistrySession(url, token, settings.author, hint, settings.secret_name, retries=retries, backoff=backoff)
    session.request("GET", "/registered_models", {"pageSize": 1})  # our errors, our time limit
    _own_event_loop_after_fork()

    def make() -> ModelRegistry:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="User access token is missing")
            return ModelRegistry(
                f"{parsed.scheme}://{parsed.hostname}",
                port=port,
                author=settings.author,
                is_secure=parsed.scheme == "https",
                user_token=token,
                log_level=logging.ERROR,
            )

    registry = session.call(make)
    attach(registry, session)
    return registry


_FORKED = False


def _forked() -> None:
    global _FORKED  # noqa: PLW0603 - a per-process fact, set by the fork hook below
    _FORKED = True


os.register_at_fork(after_in_child=_forked)


def _own_event_loop_after_fork() -> None:
    """In a forked child, give this thread a new event loop: the parent's, inherited, shares its epoll
    instance with the parent, and the client's calls on it never return."""
    global _FORKED  # noqa: PLW0603
    if not _FORKED:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop runs here: replace the inherited one
        asyncio.set_event_loop(asyncio.new_event_loop())
        _FORKED = False


POD_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"  # noqa: S105 - a variable name, not a secret
"""The variable naming a token file, read when no token is given (as the client reads it)."""
POD_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path, not a secret


def _pod_token() -> str | None:
    """The token the client itself falls back to when none is given: the file named by
    ``KF_PIPELINES_SA_TOKEN_PATH``, else the pod's service-account token, else none.

    Read here and handed to both the client and mrhelpers' session, so both send the same token.
    """
    path = os.environ.get(POD_TOKEN_ENV)
    if path:
        try:
            return Path(path).read_text().strip() or None
        except OSError as exc:
            raise InvalidInput(
                POD_TOKEN_ENV, path, f"the path of a readable token file ({exc.strerror}), or unset it"
            ) from None
    try:
        return Path(POD_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None


# --------------------------------------------------------------------------- validation


def fold(text: str) -> str:
    """``text`` as MariaDB's default collation ``utf8mb4_general_ci`` compares it.

    Per character, as that collation weighs it: letter case and accents do not count
    (``Café`` = ``cafe``; ``ß`` = ``s``), and every character outside the Basic Multilingual
    Plane (emoji, U+10000 and up) weighs the same (``😀`` = ``😁``).
    """
    out = []
    for ch in text:
        if ord(ch) > 0xFFFF:
            out.append("\ufffd")
            continue
        base = unicodedata.normalize("NFD", ch)[0]
        upper = base.upper()
        out.append("S" if ch == "ß" else upper if len(upper) == 1 else base)
    return "".join(out)


def folds(text: str) -> set[str]:
    """The forms under which a database that ignores case and accents may find ``text``: its :func:`fold`,
    and the fold of its case-folded form (``ß`` = ``ss``, as MySQL 8's default ``utf8mb4_0900_ai_ci`` has it).
    Two names, or two metadata keys, that share a form are one to such a database."""
    return {fold(text), fold(text.casefold())}


def _check_text(field: str, value: str) -> None:
    """Refuse what prints alike but is not the same text: control, invisible and direction-changing
    characters (Unicode category Cc and Cf, line and paragraph separators), and text not in NFC form."""
    if _CONTROL.search(value):
        raise InvalidInput(field, value, "printable characters only (no control characters)")
    hidden = next((ch for ch in value if ch in _SEPARATORS or unicodedata.category(ch) == "Cf"), None)
    if hidden is not None:
        raise InvalidInput(
            field, value, f"no invisible or direction-changing characters (found U+{ord(hidden):04X} "
            f"{unicodedata.name(hidden, '')}): such names print like another name and are not it",
        )  # fmt: skip
    if not unicodedata.is_normalized("NFC", value):
        raise InvalidInput(
            field, value, "text in Unicode's NFC form, which mrhelpers refuses rather than changes: "
            "unicodedata.normalize('NFC', value) gives it (an accent typed as a separate mark prints like "
            "the composed letter, and would be another name)",
        )  # fmt: skip


def _check_name(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(field, value, "a string")
    if not value.strip():
        raise InvalidInput(field, value, "a non-empty string")
    if value != value.strip():
        raise InvalidInput(field, value, "no leading or trailing whitespace")
    if len(value) > MAX_NAME:
        raise InvalidInput(field, value, f"at most {MAX_NAME} characters (got {len(value)})")
    _check_text(field, value)
    return value


def normalize_uri(uri: object) -> str:
    """Check a model URI and return it in the form that gets registered.

    An absolute local path becomes a ``file://`` URI; anything else must already
    carry a scheme (``s3://``, ``gs://``, ``oci://``, ``file://``, ``https://`` ...).

    Raises:
        InvalidInput: Not a string, empty, relative, or with spaces or control characters.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidInput("uri", uri, "a non-empty URI such as s3://bucket/model or an absolute path")
    if _CONTROL.search(uri) or uri != uri.strip():
        raise InvalidInput("uri", uri, "a URI without control characters or surrounding whitespace")
    size = len(uri.encode("utf-8", "surrogatepass"))
    if size > MAX_URI_BYTES:
        raise InvalidInput(
            "uri", f"<{size} bytes>", f"at most {MAX_URI_BYTES} bytes (the server's column); point at the model instead"
        )
    if uri.startswith("/"):
        from pathlib import PurePosixPath

        return PurePosixPath(uri).as_uri()
    if not _SCHEME.match(uri):
        raise InvalidInput(
            "uri", uri, "a URI with a scheme (s3://, gs://, oci://, file://, https://) or an absolute path"
        )
    parsed = urlparse(uri)
    if parsed.scheme != "file" and not (parsed.netloc or parsed.path.strip("/")):
        raise InvalidInput("uri", uri, "a URI that names a location after the scheme")
    return uri


def _is_reserved(key: str) -> bool:
    return fold(key).startswith(fold(RESERVED_PREFIX))


def _too_deep(value: object) -> bool:
    """True when dicts and lists nest more than ``MAX_DEPTH`` levels (iterative: no RecursionError)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def normalize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, bool | int | float | str]:
    """Check metadata and convert it to what the registry stores.

    Rules: keys are non-empty NFC strings without surrounding whitespace, control,
    invisible or direction-changing characters; they do not start with ``mrh_`` in any
    letter case (reserved for mrhelpers' own properties), and no two keys have the
    same :func:`folds` (a registry whose database ignores case and accents would merge them).
    bool, int, float and str values are stored as they are; dict and list values
    are stored as JSON strings (keys sorted). Refused: None, NaN, infinities,
    integers of more than 9 digits (the pinned client cannot send them), strings
    with NUL characters, strings over ``MAX_VALUE_BYTES``, dicts and lists nested
    more than ``MAX_DEPTH`` levels, keys over ``MAX_KEY`` characters, and other types.

    Raises:
        InvalidInput: Naming the first bad key or value.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata", metadata, "a mapping of str to bool, int, float, str, dict or list")
    out: dict[str, bool | int | float | str] = {}
    folded: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key.strip() or key != key.strip() or _CONTROL.search(key):
            raise InvalidInput("metadata key", key, "a non-empty string without surrounding whitespace")
        if len(key) > MAX_KEY:
            raise InvalidInput("metadata key", key, f"at most {MAX_KEY} characters (got {len(key)})")
        _check_text("metadata key", key)
        if _is_reserved(key):
            raise InvalidInput(
                "metadata key", key, f"a key not starting with {RESERVED_PREFIX!r} in any case (reserved for mrhelpers)"
            )
        twin = next((folded[f] for f in folds(key) if f in folded), key)
        folded.update(dict.fromkeys(folds(key), key))
        if twin != key:
            raise InvalidInput(
                "metadata key",
                key,
                f"keys that differ by more than letter case, accents or which emoji ({twin!r} is also given; a "
                "registry whose database compares as MariaDB's default utf8mb4_general_ci keeps only one of "
                "them): rename one",
            )
        field = f"metadata[{key!r}]"
        if isinstance(value, bool):
            out[key] = value
        elif isinstance(value, str):
            if "\x00" in value:
                raise InvalidInput(field, value, "a string without NUL characters (\\x00)")
            out[key] = value
        elif isinstance(value, int):
            if abs(value) > MAX_INT:
                raise InvalidInput(
                    field,
                    value,
                    f"an integer between -{MAX_INT:_} and {MAX_INT:_} (the client's limit); store a float or a str",
                )
            out[key] = value
        elif isinstance(value, float):
            if math.isnan(value) or math.isinf(value):
                raise InvalidInput(field, value, "a finite float")
            out[key] = value
        elif isinstance(value, (dict, list)):
            if _too_deep(value):
                raise InvalidInput(field, f"<{type(value).__name__} nested too deep>", f"at most {MAX_DEPTH} levels")
            try:
                out[key] = json.dumps(value, sort_keys=True, allow_nan=False)
            except (TypeError, ValueError, RecursionError) as exc:
                raise InvalidInput(field, value, f"JSON-serialisable dicts and lists ({exc})") from None
        elif value is None:
            raise InvalidInput(field, value, "bool, int, float, str, dict or list; drop the key instead of None")
        else:
            raise InvalidInput(field, value, "bool, int, float, str, dict or list")
    for key, value in out.items():
        if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
            raise InvalidInput(
                f"metadata[{key!r}]",
                f"<{len(value.encode('utf-8', 'surrogatepass'))} bytes>",
                f"at most {MAX_VALUE_BYTES} bytes; store large data as an artifact",
            )
    return out


def _check_request_size(props: Mapping[str, Any], description: str | None, ours: int = 0) -> None:
    """Refuse metadata plus description larger, as sent, than ``MAX_METADATA_BYTES``.

    ``ours``: how many of those bytes are mrhelpers' own properties (the copy of the artifact's fields).
    """
    size = len(json.dumps(props)) + len(json.dumps(description or ""))
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(
            "metadata",
            f"<{size} bytes as sent, with the description"
            + (f" and {ours} bytes of mrhelpers' copy of the URI and format>" if ours else ">"),
            f"at most {MAX_METADATA_BYTES} bytes in all (JSON-encoded; non-ASCII characters count 6 bytes each); "
            "store large data as an artifact and put its URI in the metadata",
        )


def _check_lineage(lineage: object) -> Lineage | None:
    if lineage is None:
        return None
    if not isinstance(lineage, Lineage):
        raise InvalidInput("lineage", lineage, "a mrhelpers.Lineage or None")
    for field in dataclasses.fields(lineage):
        value = getattr(lineage, field.name)
        _check_name(f"lineage.{field.name}", value)
        if field.name in ("group", "id", "name") and "{{" in value and "}}" in value:
            raise InvalidInput(
                f"lineage.{field.name}", value,
                "a real value, not a placeholder KFP left unsubstituted: feed run_id/run_name from "
                "dsl.PIPELINE_JOB_ID_PLACEHOLDER/dsl.PIPELINE_JOB_NAME_PLACEHOLDER (KFP v2 does not "
                "substitute {{workflow.*}} or {{pod.*}}) and the namespace from POD_NAMESPACE",
            )  # fmt: skip
    return lineage


# --------------------------------------------------------------------------- registration


def _next_free_name(base: str, taken: set[str]) -> str:
    """``v1`` -> ``v1-2``, ``v1-3`` ...: the first name not in ``taken`` (compared by :func:`folds`)."""
    folded = set().union(*map(folds, taken))
    n = 2
    while folds(f"{base}-{n}") & folded:
        n += 1
    return f"{base}-{n}"


def register_version(
    registry: ModelRegistry,
    name: str,
    version: str,
    uri: str,
    *,
    model_format_name: str,
    model_format_version: str,
    lineage: Lineage | None = None,
    metadata: Mapping[str, Any] | None = None,
    description: str | None = None,
    author: str | None = None,
    on_conflict: str = "error",
) -> RegistrationResult:
    """Register ``uri`` as version ``version`` of model ``name``: validated, retry-safe.

    Every input is checked before the first write, so a bad input creates
    nothing. Writes are: the RegisteredModel (when new), the ModelVersion
    (carrying ``lineage.id`` as custom property ``mrh_source_id``), and its
    ModelArtifact (carrying ``lineage`` as ``model_source_*``). When another
    writer creates the same model or version at the same moment (HTTP 409),
    it reads theirs and decides again. When a registration stopped between its
    writes (server gone, network error), running it again with the same
    ``lineage.id`` finishes it; with another id it is a conflict, so two racing
    runs never share a version.

    Args:
        registry: A client from :func:`connect`.
        name: The RegisteredModel's name.
        version: The version's name, for example ``v1.0.0``.
        uri: Where the model is stored; an absolute path becomes ``file://``.
        model_format_name: For example ``sklearn`` or ``onnx``.
        model_format_version: For example ``1``.
        lineage: Where the version came from; default None (no lineage).
        metadata: Custom properties of the version (see :func:`normalize_metadata`); default none.
        description: The version's description; default none.
        author: The version's author; default the client's author.
        on_conflict: When the version exists from another run (another
            ``lineage.id``, or no lineage): ``"error"`` (default) raises
            :class:`VersionConflict`; ``"bump"`` registers under the next free
            name ``<version>-2``, ``<version>-3`` ...

    Returns:
        A :class:`RegistrationResult`. ``created`` is True for exactly one call per version:
        the one whose write of the artifact completed it. It is False when the same version
        already existed, complete, from the same run (same ``lineage.id``; nothing is written
        then), or when a racing call of the same run completed it first.

    Raises:
        InvalidInput: A bad argument; nothing was written.
        VersionConflict: The version exists from another run and ``on_conflict="error"``.
        RegistryUnavailable: The server stopped answering (after retries).
        AuthError: The token was refused.
    """
    from model_registry.types import ModelArtifact, ModelVersion, RegisteredModel

    _check_name("name", name)
    _check_name("version", version)
    uri = normalize_uri(uri)
    _check_name("model_format_name", model_format_name)
    _check_name("model_format_version", model_format_version)
    lineage = _check_lineage(lineage)
    props = normalize_metadata(metadata)
    if description is not None and (
        not isinstance(description, str) or len(description.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES
    ):
        raise InvalidInput("description", description, f"a string of at most {MAX_VALUE_BYTES} bytes, or None")
    if description is not None and "\x00" in description:
        raise InvalidInput("description", description, "a string without NUL characters (\\x00)")
    _check_request_size(props, description)
    if author is not None:
        _check_name("author", author)
    if on_conflict not in ON_CONFLICT:
        raise InvalidInput("on_conflict", on_conflict, " or ".join(repr(o) for o in ON_CONFLICT))

    artifact = ModelArtifact(  # what gets written, and what the version keeps a copy of
        name=name,
        uri=uri,
        model_format_name=model_format_name,
        model_format_version=model_format_version,
        **(lineage.as_fields() if lineage else {}),
    )
    copy = artifact_copy(artifact)
    props = {**props, ARTIFACT_KEY: copy}
    if lineage is not None:
        props[SOURCE_ID_KEY] = lineage.id
    _check_request_size(props, description, ours=len(json.dumps(copy)))  # again, with the copy (the URI)

    session = session_for(registry)
    author = author or session.author

    rm = session.find_model(name)
    if rm is not None and rm.name != name:  # the database ignores case (or accents): that is another model
        raise _model_twin(name, rm.name)
    if rm is None:
        same = [m for m in session.models() if folds(m.name) & folds(name)]
        exact = next((m for m in same if m.name == name), None)  # created by a racing writer since
        if same and exact is None:
            raise _model_twin(name, same[0].name)
        rm = exact
    if rm is None:
        try:
            rm = session.save_model(RegisteredModel(name=name, owner=author))
        except Exception as exc:
            if status_of(exc) != 409:  # another writer created it first: use theirs
                raise
            rm = session.find_model(name)
            if rm is not None and rm.name != name:
                raise _model_twin(name, rm.name) from None
    assert rm is not None and rm.id is not None

    def add_artifact(version_id: str) -> tuple[Any, bool]:
        """Write the version's artifact: (the artifact, whether this call wrote it)."""
        try:
            return session.add_artifact(version_id, artifact), True
        except Exception as exc:
            # 409: a same-run writer added it first, or, after a retried attempt, our own request whose
            # answer was lost (or both: then both callers say they wrote it; see docs/guarantees.md).
            found = session.model_artifact(version_id) if status_of(exc) == 409 else None
            if found is None:
                raise
            return found, bool(getattr(exc, "after_retry", False))

    def settle(version_id: str, stored: dict[str, Any] | None, art: Any) -> None:
        """Make the version's copy of its artifact's fields say what the artifact says (a same-run
        writer may have written the artifact with other values). Versions without a copy keep none."""
        if stored is None or ARTIFACT_KEY not in stored or stored[ARTIFACT_KEY] == artifact_copy(art):
            return
        full = session.version(version_id)
        full.custom_properties = {**(full.custom_properties or {}), ARTIFACT_KEY: artifact_copy(art)}
        session.save_version(full)

    wanted = version
    tried: list[str] = []
    for attempt in range(BUMP_ATTEMPTS):
        # The server compares names as its database does (so it finds a twin in case or accents on a
        # registry that ignores them); the names this session knows find a case twin on one that does not.
        mv = session.find_version(rm.id, wanted)
        twin: tuple[str, str, str | None] | None = None  # (id, name, the run that registered it)
        if mv is not None and mv.name != wanted:
            twin, mv = (str(mv.id), mv.name, (mv.custom_properties or {}).get(SOURCE_ID_KEY)), None
        elif mv is None:
            known = session.version_names(rm.id).items()
            same = [(vid, n, owner) for vid, (n, owner) in known if folds(n) & folds(wanted)]
            exact = next((t for t in same if t[1] == wanted), None)  # written by a racing writer just now
            mv = session.version(exact[0]) if exact else None
            twin = same[0] if same and exact is None else None
        if twin is not None:  # differs only in case (or accents) from an existing version: that name is taken
            if on_conflict == "error":
                raise VersionConflict(name, wanted, twin[0], twin[2], existing_name=twin[1])
        elif mv is not None:
            art = session.model_artifact(mv.id)
            owner = art.model_source_id if art else (mv.custom_properties or {}).get(SOURCE_ID_KEY)
            if lineage is not None and owner == lineage.id:
                created = False
                if art is None:  # our own registration stopped between its writes (or runs now): finish it
                    art, created = add_artifact(mv.id)
                settle(mv.id, mv.custom_properties, art)
                return RegistrationResult(str(rm.id), str(mv.id), str(art.id), wanted, created, name)
            if on_conflict == "error":
                raise VersionConflict(name, wanted, str(mv.id), owner)
        else:
            try:
                mv = session.save_version(
                    ModelVersion(name=wanted, author=author, description=description, custom_properties=props), rm.id
                )
            except Exception as exc:
                if status_of(exc) != 409:
                    raise
                # A racing writer took the name (or our lost request did): read them all again and decide
                # again, after a short random wait so that many bumping writers spread out.
                session.forget(rm.id)
                time.sleep(random.uniform(0, 0.02 * min(attempt + 1, 10)))  # noqa: S311 - jitter, not security
                continue
            art, created = add_artifact(mv.id)
            settle(mv.id, mv.custom_properties, art)
            return RegistrationResult(str(rm.id), str(mv.id), str(art.id), wanted, created, name)
        tried.append(wanted)
        taken = {n for n, _ in session.version_names(rm.id).values()} | set(tried)
        wanted = _next_free_name(version, taken)
    raise VersionConflict(name, version, "", None, tried=tuple(tried))


def artifact_copy(artifact: Any) -> str:
    """The JSON that a version keeps (as ``mrh_artifact``) of its ModelArtifact's fields.

    The frames read it instead of one request per version; a version without it has its artifact read.
    """
    return json.dumps(artifact_fields(artifact), sort_keys=True, separators=(",", ":"))


def artifact_fields(art: Any) -> dict[str, Any]:
    """The frames' artifact columns of a ModelArtifact (all None for None)."""
    return {
        "uri": getattr(art, "uri", None),
        "format": getattr(art, "model_format_name", None),
        "format_version": getattr(art, "model_format_version", None),
        "source_kind": getattr(art, "model_source_kind", None),
        "source_class": getattr(art, "model_source_class", None),
        "source_group": getattr(art, "model_source_group", None),
        "source_id": getattr(art, "model_source_id", None),
        "source_name": getattr(art, "model_source_name", None),
    }


def copied_fields(version: Any) -> dict[str, Any] | None:
    """The artifact fields a version carries (see :func:`artifact_copy`), or None when it carries none,
    or when the version was changed after its creation: a copy written (or re-written) later, by
    another tool say, is not trusted, and the caller reads the artifact itself."""
    raw = (version.custom_properties or {}).get(ARTIFACT_KEY)
    if not isinstance(raw, str):
        return None
    if str(getattr(version, "last_update_time_since_epoch", None)) != str(
        getattr(version, "create_time_since_epoch", None)
    ):
        return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(fields, dict) or set(fields) != set(artifact_fields(None)):
        return None
    return fields


def _model_twin(name: str, existing: str) -> InvalidInput:
    return InvalidInput(
        "name",
        name,
        f"a model name that differs from the existing model {existing!r} by more than letter case or accents "
        "(a registry whose database ignores them treats both names as one model): "
        f"use {existing!r} to add a version to it, or pick another name",
    )


def all_versions(registry: ModelRegistry, model_id: str) -> list[Version]:
    """Every version of model ``model_id``, from one listing."""
    return session_for(registry).versions(model_id)
