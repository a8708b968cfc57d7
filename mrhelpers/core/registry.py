"""Connecting to the Model Registry, lineage, input checks, and retry-safe registration (no kfp, no pandas:
a pipeline component imports it)."""

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
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from mrhelpers.core import rest
from mrhelpers.core.errors import InvalidInput, VersionConflict
from mrhelpers.core.rest import SOURCE_ID_KEY, RegistrySession, attach, session_for, status_of
from mrhelpers.core.settings import Settings

if TYPE_CHECKING:
    from model_registry import ModelRegistry

# The properties mrhelpers writes (docs/guarantees.md says why each exists); user metadata may not start with mrh_.
RESERVED_PREFIX = "mrh_"
STAGE_KEY = "mrh_stage"  # on a version: the stage it was last given
ARTIFACT_KEY = "mrh_artifact"  # on a version, written with it: its artifact's fields as JSON (artifact_copy)
PRODUCTION_KEY = "mrh_production_version"  # on a model: the id of its production version, "" for none
ON_CONFLICT = ("error", "bump")
MAX_NAME = 200  # names sit in 255-character columns with a "<parent id>:" prefix
MAX_KEY = 255  # the server's property-name column
MAX_VALUE_BYTES = 4 * 1024 * 1024  # largest metadata string or description, UTF-8
MAX_METADATA_BYTES = 16 * 1024 * 1024  # metadata + description as sent (JSON): MariaDB's default max_allowed_packet
MAX_DEPTH = 100  # deepest nesting of a dict or list value
MAX_URI_BYTES = 65_535  # the server's TEXT column
MAX_INT = 999_999_999  # the pinned client sends at most 9 digits
BUMP_ATTEMPTS = 64  # most names on_conflict="bump" tries
POD_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"  # noqa: S105 - a variable name, not a secret
POD_TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"  # noqa: S105 - a path, not a secret
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SEPARATORS = "\u2028\u2029"  # line and paragraph separators
_SOURCE = ("kind", "class", "group", "id", "name")  # a ModelArtifact's model_source_* fields, in Lineage's order


@dataclasses.dataclass(frozen=True)
class Lineage:
    """Where a version came from: the artifact's ``model_source_*``; ``id`` is the run id, ``group`` its namespace."""

    kind: str
    cls: str
    group: str
    id: str
    name: str

    @classmethod
    def for_kfp_run(cls, run_id: str, run_name: str, namespace: str) -> Lineage:
        """A KFP run's lineage: ids from ``dsl.PIPELINE_JOB_ID_PLACEHOLDER`` / ``..._NAME_...``; ``local`` locally."""
        return cls(kind="kfp", cls="pipelinerun", group=namespace, id=run_id, name=run_name)

    def as_fields(self) -> dict[str, str]:
        """The five ``model_source_*`` keyword arguments of a ModelArtifact."""
        return {f"model_source_{k}": v for k, v in zip(_SOURCE, dataclasses.astuple(self), strict=True)}


@dataclasses.dataclass(frozen=True)
class RegistrationResult:
    """What :func:`register_version` wrote or found; ``created`` is True only for the call that wrote the artifact."""

    model_id: str
    version_id: str
    artifact_id: str
    version_name: str
    created: bool
    model_name: str


_PADDED_HINT = (
    "a token without surrounding spaces or newlines (mrhelpers refuses it rather than guess which characters "
    "belong to it). Rewrite it without them: MRH_TOKEN, or the local Secret {secret!r} with "
    "mrhelpers.ensure_secret(settings, {secret!r}, {{'token': TOKEN}}) (a file written with `echo` ends in a newline; "
    "use `printf %s`)"
)


def connect(settings: Settings, *, retries: int = 5, backoff: float = 0.5) -> ModelRegistry:
    """A ``model_registry.ModelRegistry`` for ``settings.registry_url`` with mrhelpers' session beside it, after
    one request over that session (docs/guarantees.md: the URL and token checks, retries, errors, time limit)."""
    from model_registry import ModelRegistry

    url = settings.registry_url
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInput("registry_url", url, "an http(s):// URL with a host, for example http://127.0.0.1:8080")
    if parsed.path.strip("/") or parsed.query or parsed.fragment or parsed.params:
        raise InvalidInput(
            "registry_url", url,
            f"the server's address only, scheme, host and port ({parsed.scheme}://{parsed.netloc}): the client "
            f"adds {rest.api_path()} itself and drops any path, so every request would miss",
        )  # fmt: skip
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
                port=parsed.port or (443 if parsed.scheme == "https" else 80),
                author=settings.author,
                is_secure=parsed.scheme == "https",
                user_token=token,
                log_level=logging.ERROR,
            )

    registry = session.call(make)
    attach(registry, session)
    return registry


_LOOP_PID = os.getpid()


def _own_event_loop_after_fork() -> None:
    """In a forked child, a new event loop: the inherited one shares the parent's epoll and hangs the client."""
    global _LOOP_PID  # noqa: PLW0603 - a per-process fact
    if os.getpid() == _LOOP_PID:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop runs here: replace the inherited one
        asyncio.set_event_loop(asyncio.new_event_loop())
        _LOOP_PID = os.getpid()


def _pod_token() -> str | None:
    """The token the client falls back to: the file named by ``KF_PIPELINES_SA_TOKEN_PATH``, else the pod's."""
    path = os.environ.get(POD_TOKEN_ENV)
    try:
        return Path(path or POD_TOKEN_FILE).read_text().strip() or None
    except OSError as exc:
        if path:
            raise InvalidInput(POD_TOKEN_ENV, path, f"a readable token file ({exc.strerror}), or unset it") from None
        return None


def fold(text: str) -> str:
    """``text`` as MariaDB's ``utf8mb4_general_ci`` compares it: no case or accents, beyond U+FFFF all alike."""
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
    """The forms a database ignoring case and accents may find ``text`` under (``ß`` as ``s`` and as ``ss``)."""
    return {fold(text), fold(text.casefold())}


def _check_text(field: str, value: str) -> None:
    """Refuse what prints like other text: control, invisible and direction-changing characters, non-NFC text."""
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


def _check_name(field: str, value: object, limit: int = MAX_NAME) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(field, value, "a non-empty string")
    if value != value.strip():
        raise InvalidInput(field, value, "no leading or trailing whitespace")
    if len(value) > limit:
        raise InvalidInput(field, value, f"at most {limit} characters (got {len(value)})")
    _check_text(field, value)
    return value


def normalize_uri(uri: object) -> str:
    """The URI as registered: an absolute path becomes ``file://``; anything else needs a scheme."""
    if not isinstance(uri, str) or not uri.strip() or _CONTROL.search(uri) or uri != uri.strip():
        raise InvalidInput("uri", uri, "a URI like s3://b/m or an absolute path; no control characters or outer spaces")
    size = len(uri.encode("utf-8", "surrogatepass"))
    if size > MAX_URI_BYTES:
        raise InvalidInput("uri", f"<{size} bytes>", f"at most {MAX_URI_BYTES} bytes; point at the model instead")
    if uri.startswith("/"):
        return PurePosixPath(uri).as_uri()
    if not _SCHEME.match(uri):
        raise InvalidInput("uri", uri, "a URI with a scheme (s3://, gs://, oci://, https://) or an absolute path")
    parsed = urlparse(uri)
    if parsed.scheme != "file" and not (parsed.netloc or parsed.path.strip("/")):
        raise InvalidInput("uri", uri, "a URI that names a location after the scheme")
    return uri


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


def _check_value(field: str, value: object) -> bool | int | float | str:
    """One metadata value as stored: bool, int, float and str as they are, dict and list as sorted JSON."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput(field, value, "a string without NUL characters (\\x00)")
        size = len(value.encode("utf-8", "surrogatepass"))
        if size > MAX_VALUE_BYTES:
            raise InvalidInput(
                field, f"<{size} bytes>", f"at most {MAX_VALUE_BYTES} bytes; store large data as an artifact"
            )
        return value
    if isinstance(value, int):
        if abs(value) > MAX_INT:
            raise InvalidInput(field, value, f"an integer within ±{MAX_INT:_} (the client's limit), or a float or str")
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise InvalidInput(field, value, "a finite float")
        return value
    if isinstance(value, (dict, list)):
        if _too_deep(value):
            raise InvalidInput(field, f"<{type(value).__name__} nested too deep>", f"at most {MAX_DEPTH} levels")
        try:
            return _check_value(field, json.dumps(value, sort_keys=True, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise InvalidInput(field, value, f"JSON-serialisable dicts and lists ({exc})") from None
    if value is None:
        raise InvalidInput(field, value, "bool, int, float, str, dict or list; drop the key instead of None")
    raise InvalidInput(field, value, "bool, int, float, str, dict or list")


def normalize_metadata(metadata: Mapping[str, Any] | None) -> dict[str, bool | int | float | str]:
    """Metadata checked and converted to what the registry stores (the rules: docs/guarantees.md)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidInput("metadata", metadata, "a mapping of str to bool, int, float, str, dict or list")
    out: dict[str, bool | int | float | str] = {}
    folded: dict[str, str] = {}
    for key, value in metadata.items():
        _check_name("metadata key", key, MAX_KEY)
        if fold(key).startswith(fold(RESERVED_PREFIX)):
            raise InvalidInput(
                "metadata key", key, f"a key not starting with {RESERVED_PREFIX!r} in any case (reserved for mrhelpers)"
            )
        twin = next((folded[f] for f in folds(key) if f in folded), key)
        folded.update(dict.fromkeys(folds(key), key))
        if twin != key:
            raise InvalidInput(
                "metadata key", key,
                f"keys that differ by more than letter case, accents or which emoji ({twin!r} is also given; a "
                "registry whose database compares as MariaDB's default utf8mb4_general_ci keeps only one of "
                "them): rename one",
            )  # fmt: skip
        out[key] = _check_value(f"metadata[{key!r}]", value)
    return out


def _check_request_size(props: Mapping[str, Any], description: str | None) -> None:
    """Refuse metadata (mrhelpers' own included) plus description larger, as sent, than ``MAX_METADATA_BYTES``."""
    size = len(json.dumps(props)) + len(json.dumps(description or ""))
    if size > MAX_METADATA_BYTES:
        raise InvalidInput(
            "metadata", f"<{size} bytes as sent, with the description and mrhelpers' copy of the URI and format>",
            f"at most {MAX_METADATA_BYTES} bytes in all (JSON-encoded; non-ASCII characters count 6 bytes each); "
            "store large data as an artifact and put its URI in the metadata",
        )  # fmt: skip


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
    """Register ``uri`` as version ``version`` of model ``name``, every input checked first; retry-safe for the
    same ``lineage.id``. A version from another run: ``on_conflict="error"`` raises :class:`VersionConflict`,
    ``"bump"`` takes the next free ``<version>-2``, ``-3`` ... (docs/guarantees.md)."""
    from model_registry.types import ModelArtifact, ModelVersion, RegisteredModel

    formats = (("model_format_name", model_format_name), ("model_format_version", model_format_version))
    for field, value in (("name", name), ("version", version), *formats):
        _check_name(field, value)
    uri = normalize_uri(uri)
    lineage = _check_lineage(lineage)
    props = normalize_metadata(metadata)
    if description is not None and not isinstance(description, str):
        raise InvalidInput("description", description, f"a string of at most {MAX_VALUE_BYTES} bytes, or None")
    if description is not None:
        _check_value("description", description)
    if author is not None:
        _check_name("author", author)
    if on_conflict not in ON_CONFLICT:
        raise InvalidInput("on_conflict", on_conflict, " or ".join(repr(o) for o in ON_CONFLICT))

    artifact = ModelArtifact(
        name=name,
        uri=uri,
        model_format_name=model_format_name,
        model_format_version=model_format_version,
        **(lineage.as_fields() if lineage else {}),
    )
    copy = artifact_copy(artifact)
    props = {**props, ARTIFACT_KEY: copy} | ({SOURCE_ID_KEY: lineage.id} if lineage else {})
    _check_request_size(props, description)

    session = session_for(registry)
    author = author or session.author

    def existing_model() -> Any:
        """The model named ``name``, or None; a case or accent twin (found by the server or the listing) is refused."""
        found = session.find_model(name)
        same = [found] if found else [m for m in session.models() if folds(m.name) & folds(name)]
        if same and all(m.name != name for m in same):
            raise InvalidInput(
                "name",
                name,
                f"a model name that differs from the existing model {same[0].name!r} by more than "
                f"letter case or accents (a registry whose database ignores them treats both as one model): use "
                f"{same[0].name!r} to add a version to it, or pick another name",
            )
        return next((m for m in same if m.name == name), None)

    rm = existing_model()
    if rm is None:
        try:
            rm = session.save_model(RegisteredModel(name=name, owner=author))
        except Exception as exc:
            if status_of(exc) != 409:  # another writer created it first: use theirs
                raise
            rm = existing_model()
    assert rm is not None and rm.id is not None

    def finish(mv: Any, art: Any) -> RegistrationResult:
        """Write the artifact when ``art`` is None; make the version's copy say what the artifact says."""
        created = False
        if art is None:
            try:
                art, created = session.add_artifact(mv.id, artifact), True
            except Exception as exc:
                # 409: a same-run writer added it first, or, after a retried attempt, our own request whose
                # answer was lost (or both: then both callers say they wrote it; see docs/guarantees.md).
                art = session.model_artifact(mv.id) if status_of(exc) == 409 else None
                if art is None:
                    raise
                created = bool(getattr(exc, "after_retry", False))
        stored = mv.custom_properties or {}
        if ARTIFACT_KEY in stored and stored[ARTIFACT_KEY] != artifact_copy(art):  # a same-run writer's values
            full = session.version(mv.id)
            full.custom_properties = {**(full.custom_properties or {}), ARTIFACT_KEY: artifact_copy(art)}
            session.save_version(full)
        return RegistrationResult(str(rm.id), str(mv.id), str(art.id), wanted, created, name)

    wanted = version
    tried: list[str] = []
    for attempt in range(BUMP_ATTEMPTS):
        # The server compares names as its database does (so it finds a case or accent twin on a registry
        # that ignores them); the names this session knows find a case twin on one that does not.
        mv = session.find_version(rm.id, wanted)
        twin: tuple[str, str, str | None] | None = None  # (id, name, the run that registered it)
        if mv is not None and mv.name != wanted:
            twin, mv = (str(mv.id), mv.name, (mv.custom_properties or {}).get(SOURCE_ID_KEY)), None
        elif mv is None:
            same = [(vid, *t) for vid, t in session.version_names(rm.id).items() if folds(t[0]) & folds(wanted)]
            exact = next((t for t in same if t[1] == wanted), None)  # written by a racing writer just now
            mv = session.version(exact[0]) if exact else None
            twin = same[0] if same and exact is None else None
        if twin is not None:  # differs only in case (or accents) from an existing version: that name is taken
            if on_conflict == "error":
                raise VersionConflict(name, wanted, twin[0], twin[2], existing_name=twin[1])
        elif mv is not None:
            art = session.model_artifact(mv.id)
            owner = art.model_source_id if art else (mv.custom_properties or {}).get(SOURCE_ID_KEY)
            if lineage is not None and owner == lineage.id:  # ours: done, or stopped between its writes
                return finish(mv, art)
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
            return finish(mv, None)
        tried.append(wanted)
        taken = {n for n, _ in session.version_names(rm.id).values()} | set(tried)
        wanted = _next_free_name(version, taken)
    raise VersionConflict(name, version, "", None, tried=tuple(tried))


def artifact_fields(art: Any) -> dict[str, Any]:
    """The frames' artifact columns of a ModelArtifact (all None for None)."""
    return {
        "uri": getattr(art, "uri", None),
        "format": getattr(art, "model_format_name", None),
        "format_version": getattr(art, "model_format_version", None),
        **{f"source_{k}": getattr(art, f"model_source_{k}", None) for k in _SOURCE},
    }


def artifact_copy(artifact: Any) -> str:
    """The JSON a version keeps of its ModelArtifact's fields (``mrh_artifact``), read by the frames."""
    return json.dumps(artifact_fields(artifact), sort_keys=True, separators=(",", ":"))


def copied_fields(version: Any) -> dict[str, Any] | None:
    """The artifact fields a version carries, or None (also when it changed since its creation)."""
    raw = (version.custom_properties or {}).get(ARTIFACT_KEY)
    if not isinstance(raw, str) or str(version.last_update_time_since_epoch) != str(version.create_time_since_epoch):
        return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return None
    return fields if isinstance(fields, dict) and set(fields) == set(artifact_fields(None)) else None
