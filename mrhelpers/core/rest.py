"""One keep-alive HTTP session per registry: every call mrhelpers makes to the Model Registry.

Why REST over ``requests``, and not the client's own API object: the pinned client
(``model-registry`` 0.3.x) opens a new aiohttp session, with a new SSL context, for every
call, about 30 ms each on this project's machine, and its only handle on the HTTP layer is
a private attribute of the client object, which any release may change. mrhelpers keeps
to the client's public surface: its types (``model_registry.types``) build request bodies
(``.create()``, ``.update()``, ``.wrap()``) and read answers (``from_basemodel``), with
the generated models of ``mr_openapi`` in between. The HTTP itself is a ``requests.Session``
per registry and process: connections are reused, at most ``IN_FLIGHT`` requests run at
once, and every request has a timeout.

:func:`mrhelpers.connect` makes the session and keeps it beside the client it returns
(a ``WeakKeyDictionary``, nothing is set on the client); :func:`session_for` finds it.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from mrhelpers.core.errors import AuthError, InvalidInput, MRHelpersError, RegistryUnavailable
from mrhelpers.core.settings import Secret

if TYPE_CHECKING:
    import requests
    from model_registry import ModelRegistry

T = TypeVar("T")
SOURCE_ID_KEY = "mrh_source_id"
"""Set on a version at its creation to its ``lineage.id`` (see :mod:`mrhelpers.core.registry`)."""
PAGE = 1000
"""Entities per listed page (the server's largest)."""
IN_FLIGHT = 6
"""Most requests one session has in flight. The server keeps 2 idle database connections and
opens (then closes) one per extra concurrent request: 16 in flight opened thousands per frame."""
TIMEOUT = (5.0, 30.0)
"""Seconds to connect, and to wait for an answer, per attempt (each attempt gets at most what is left of
``MAX_WAIT_S``)."""
MAX_WAIT_S = 30.0
"""Most seconds one request waits in all, retries and backoff included, before :class:`RegistryUnavailable`:
the ceiling of any helper call against a server that accepts connections and never answers."""
FRESH_MS = 1000
"""How far back (in the server's update times) a refresh of a model's version names re-reads, so that
a version whose commit lagged its timestamp is not missed (see :meth:`RegistrySession.version_names`)."""
FULL_EVERY_S = 30.0
"""Seconds after which a model's version names are listed in full again, whatever changed."""
CACHED_MODELS = 64
"""Most models whose version names one session keeps."""


def api_path_in(source: str) -> str:
    """The REST prefix (``/api/model_registry/<version>``) in the source of a client's generated API module."""
    found = re.search(r'resource_path="(/api/model_registry/[^/"]+)/registered_models"', source)
    if found is None:
        raise MRHelpersError(
            "cannot tell which REST path the installed model-registry client calls (its generated "
            "mr_openapi.api.model_registry_service_api names no /api/model_registry/<version>/registered_models). "
            "Install a model-registry version that setup/constraints.txt or pyproject.toml allows."
        )
    return found.group(1)


@functools.cache
def api_path() -> str:
    """The REST prefix the installed model-registry client calls, so mrhelpers speaks what the client speaks.

    The alpha path for the pinned 0.3.14 (the one the v0.2.22 server serves, MODEL_REGISTRY_API_PATH in
    setup/versions.env); ``/api/model_registry/v1`` for 0.3.15 and later, against servers that serve it. Read once
    from the client's generated API module.
    """
    import inspect

    from mr_openapi.api import model_registry_service_api

    return api_path_in(inspect.getsource(model_registry_service_api))


class RegistryHttpError(MRHelpersError):
    """The server answered a request with an error status (other than a refused token).

    Attributes:
        status: The HTTP status, for example 409.
        method: ``GET``, ``POST`` or ``PATCH``.
        path: The API path that was asked for.
        body: The start of the server's answer.
    """

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        super().__init__(f"HTTP {status} from the Model Registry on {method} {path}: {body}")


# --------------------------------------------------------------------------- errors and retries


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (ours, or the client's), else None."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def is_connection_error(exc: BaseException) -> bool:
    """A lost or refused connection, or a timeout: what a restarting server gives."""
    import aiohttp  # what the client's own calls (connect's first request) raise
    import requests

    if is_certificate_error(exc):
        return False
    lost = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    return isinstance(exc, (*lost, aiohttp.ClientConnectionError, asyncio.TimeoutError, ConnectionError, TimeoutError))


def is_certificate_error(exc: BaseException) -> bool:
    """A TLS certificate this process does not trust: retrying cannot help."""
    import aiohttp
    import requests

    return isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError, aiohttp.ClientSSLError))


_DATASTORE_DOWN = (
    "dial tcp",
    "connection refused",
    "bad connection",
    "invalid connection",
    "Datastore service is down",
)


def datastore_down(exc: BaseException) -> bool:
    """An HTTP 500 whose body says the server lost its database (it answers, the database does not)."""
    return status_of(exc) == 500 and any(s in str(exc) for s in _DATASTORE_DOWN)


def retryable(exc: BaseException) -> bool:
    return is_connection_error(exc) or status_of(exc) in (502, 503, 504) or datastore_down(exc) or rolled_back(exc)


def rolled_back(exc: BaseException) -> bool:
    """An HTTP 500 for a transaction the database rolled back and asks to run again.

    MariaDB ends one of two racing writes with ``Error 1213 (40001): Deadlock found ...; try restarting
    transaction`` (or 1205, a lock wait timeout): nothing of it was kept, so sending it again is safe.
    """
    return status_of(exc) == 500 and "try restarting transaction" in str(exc)


def unavailable(url: str, hint: str, reason: str) -> RegistryUnavailable:
    return RegistryUnavailable(f"Model Registry at {url} is not reachable ({reason}). {hint}")


def auth_error(url: str, status: int, secret_name: str) -> AuthError:
    return AuthError(
        f"Model Registry at {url} refused the token (HTTP {status}). The token comes from MRH_TOKEN if set, "
        f"else from the Secret {secret_name!r}: locally the file <state dir>/secrets/{secret_name}/token "
        f"(notebook 01 or mrhelpers.ensure_secret writes it); on a cluster `kubectl get secret {secret_name} "
        "-n <namespace>`. Store the token the registry expects and retry."
    )


def with_retries(
    make: Callable[[], T], url: str, hint: str, secret_name: str, retries: int, backoff: float,
    deadline: float | None = None,
) -> T:  # fmt: skip
    """Call ``make()``; retry what a restart or a lost connection explains, with doubling waits.

    A refused token raises :class:`AuthError` at once; after ``retries`` attempts, or when the
    next attempt would start after ``deadline`` (``time.monotonic()``; default ``MAX_WAIT_S``
    from now), a server or database that does not answer raises :class:`RegistryUnavailable`.
    An error raised after a retried attempt carries ``after_retry = True``: a 409 then may
    answer this call's own earlier write, whose answer was lost.
    """
    deadline = time.monotonic() + MAX_WAIT_S if deadline is None else deadline
    delay = backoff
    for attempt in range(1, retries + 1):
        try:
            return make()
        except Exception as exc:
            if attempt > 1 and isinstance(exc, RegistryHttpError):
                exc.after_retry = True
            status = status_of(exc)
            if status in (401, 403):
                raise auth_error(url, status, secret_name) from None
            if is_certificate_error(exc):
                raise RegistryUnavailable(
                    f"Model Registry at {url}: the TLS handshake failed ({exc}), so nothing was sent. Either its "
                    "certificate is not trusted here (add its CA to the system's certificates, or point "
                    "SSL_CERT_FILE at a PEM file holding it), or it does not speak TLS (use http:// in registry_url)."
                ) from None
            if not retryable(exc):
                raise
            if attempt == retries or time.monotonic() + delay >= deadline:
                reason = (
                    "it answers, but its database does not: HTTP 500 " + str(exc).strip().splitlines()[-1]
                    if datastore_down(exc)
                    else f"{type(exc).__name__}: {exc}"
                )
                reason += f"; gave up after {attempt} attempt(s)"
                raise unavailable(url, hint, reason) from None
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------- values as stored


def decode_properties(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Custom properties as the client's types give them, read from the server's JSON.

    The same rules as ``model_registry.types`` (``int_value`` is a string on the wire; struct and
    proto values are kept as their string), except that a double is always a float: the server
    writes ``1e20`` or ``-0.0`` as ``100000000000000000000`` or ``-0``, which JSON reads as an int.
    (The sign of a zero does not survive that JSON: ``-0.0`` reads back as ``0.0``.)
    """
    out: dict[str, Any] = {}
    for key, meta in (raw or {}).items():
        kind = str(meta.get("metadataType", ""))[8:-5].lower()
        value = meta.get(f"{kind}_value")
        if kind == "int" and value is not None:
            value = int(value)
        elif kind == "double" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
    return out


def typed(kind: Any, wire: Any, raw: dict[str, Any]) -> Any:
    """``raw`` (the server's JSON) as the client's type ``kind``, with doubles kept as floats.

    ``kind.from_basemodel`` alone would read a double such as ``1e20`` back as an int, which the
    client then refuses to write again (its integers have at most 9 digits).
    """
    out = kind.from_basemodel(wire.from_dict(raw))
    if getattr(out, "custom_properties", None):
        out.custom_properties = decode_properties(raw.get("customProperties")) or out.custom_properties
    return out


def _name_entry(version: Version) -> tuple[str, str | None]:
    return str(version.name), (version.custom_properties or {}).get(SOURCE_ID_KEY)


class Version:
    """A model version as listed, read straight from the server's JSON (no pydantic on the hot path).

    Attributes mirror ``model_registry.types.ModelVersion``: ``id, name, state, author,
    description, registered_model_id, create_time_since_epoch, last_update_time_since_epoch,
    custom_properties``.
    """

    __slots__ = (
        "id", "name", "state", "author", "description", "registered_model_id",
        "create_time_since_epoch", "last_update_time_since_epoch", "custom_properties",
    )  # fmt: skip

    def __init__(self, raw: dict[str, Any]) -> None:
        self.id = raw.get("id")
        self.name = raw.get("name")
        self.state = raw.get("state")
        self.author = raw.get("author")
        self.description = raw.get("description")
        self.registered_model_id = raw.get("registeredModelId")
        self.create_time_since_epoch = raw.get("createTimeSinceEpoch")
        self.last_update_time_since_epoch = raw.get("lastUpdateTimeSinceEpoch")
        self.custom_properties = decode_properties(raw.get("customProperties")) or None

    def __repr__(self) -> str:
        return f"Version(id={self.id!r}, name={self.name!r}, model={self.registered_model_id!r})"


# --------------------------------------------------------------------------- the session


class RegistrySession:
    """The HTTP session of one registry client: retries, error mapping, typed calls.

    Thread-safe; a forked or spawned process opens its own connections. The token is
    never part of the repr.
    """

    def __init__(
        self, url: str, token: str | None, author: str, hint: str, secret_name: str, *,
        retries: int = 3, backoff: float = 0.5,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.author = author
        self.hint = hint
        self.secret_name = secret_name
        self.retries = retries
        self.backoff = backoff
        self.__token = Secret(token or "")  # its repr hides the value
        self.__lock = threading.Lock()
        self.__gate = threading.BoundedSemaphore(IN_FLIGHT)
        self.__http: requests.Session | None = None
        self.__pid = os.getpid()
        self.__names: dict[str, tuple[dict[str, tuple[str, str | None]], int, float]] = {}

    def __repr__(self) -> str:
        return f"RegistrySession(url={self.url!r}, author={self.author!r})"

    def __getstate__(self) -> None:
        raise TypeError("a RegistrySession holds a token and open connections: connect() again in the other process")

    # ---- HTTP

    def http(self) -> requests.Session:
        """This process's ``requests.Session`` (made on first use, again after a fork)."""
        if self.__pid != os.getpid():  # a forked child: the parent's lock, gate and sockets are not its own
            self.__lock = threading.Lock()
            self.__gate = threading.BoundedSemaphore(IN_FLIGHT)
            self.__http, self.__pid = None, os.getpid()
        with self.__lock:
            if self.__http is None:
                import requests
                from requests.adapters import HTTPAdapter

                class SameTrustAdapter(HTTPAdapter):
                    """Trusts what the client trusts: Python's default SSL context (the system's
                    certificates, or SSL_CERT_FILE), not the certifi bundle ``requests`` uses by default."""

                    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
                        kwargs["ssl_context"] = ssl.create_default_context()
                        super().init_poolmanager(*args, **kwargs)

                http = requests.Session()
                http.trust_env = False  # as the client: no proxy variables, and no ~/.netrc replacing the token
                http.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=IN_FLIGHT))
                http.mount("https://", SameTrustAdapter(pool_connections=1, pool_maxsize=IN_FLIGHT))
                http.headers["Accept"] = "application/json"
                if self.__token.reveal():
                    http.headers["Authorization"] = f"Bearer {self.__token.reveal()}"
                self.__http = http
            return self.__http

    def send(
        self, method: str, path: str, params: dict[str, Any] | None = None, body: Any = None, left: float = MAX_WAIT_S
    ) -> Any:
        """One request, no retries: the decoded JSON answer, or :class:`RegistryHttpError`.

        At most ``IN_FLIGHT`` requests of this session run at once, from any number of threads;
        ``left``: most seconds it may take (waiting for a free slot included), within ``TIMEOUT``.
        """
        http = self.http()
        start = time.monotonic()
        if not self.__gate.acquire(timeout=left):
            raise TimeoutError(f"no free request slot within {left:.0f} s (all {IN_FLIGHT} wait for answers)")
        try:
            left = max(0.1, left - (time.monotonic() - start))
            timeout = (min(TIMEOUT[0], left), min(TIMEOUT[1], left))
            answer = http.request(
                method, self.url + api_path() + path, params=params, json=body, timeout=timeout, allow_redirects=False
            )
        finally:
            self.__gate.release()
        if 300 <= answer.status_code < 400:  # a gateway sending us to its sign-in page
            raise AuthError(
                f"Model Registry at {self.url} redirected {method} {path} to {answer.headers.get('Location', '?')} "
                f"(HTTP {answer.status_code}): the gateway in front of it did not accept the request's token. "
                f"Check the token (MRH_TOKEN, or the Secret {self.secret_name!r}) and that registry_url is the "
                "registry's own address."
            )
        if answer.status_code >= 400:
            raise RegistryHttpError(answer.status_code, method, path, answer.text[:2000].strip())
        if not answer.content:
            return None
        try:
            return answer.json()
        except ValueError:
            raise RegistryHttpError(
                answer.status_code, method, path,
                "the answer is not JSON, so this is not the Model Registry's REST API (check registry_url): "
                + answer.text[:200].strip(),
            ) from None  # fmt: skip

    def request(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        *,
        missing_ok: bool = False,
    ) -> Any:
        """:meth:`send` with retries; with ``missing_ok`` an HTTP 404 gives None."""

        deadline = time.monotonic() + MAX_WAIT_S

        def once() -> Any:
            try:
                return self.send(method, path, params, body, deadline - time.monotonic())
            except RegistryHttpError as exc:
                if missing_ok and exc.status == 404:
                    return None
                raise

        return self.call(once, deadline)

    def call(self, make: Callable[[], T], deadline: float | None = None) -> T:
        """Run ``make()`` with this registry's retries and error mapping, within ``MAX_WAIT_S`` (or ``deadline``)."""
        return with_retries(make, self.url, self.hint, self.secret_name, self.retries, self.backoff, deadline)

    def pages(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every item of a listing, a page of ``PAGE`` at a time."""
        items: list[dict[str, Any]] = []
        query = {"pageSize": PAGE, **(params or {})}
        while True:
            page = self.request("GET", path, query) or {}
            items.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token or not page.get("items"):
                return items
            query = {**query, "nextPageToken": token}

    def map(self, work: Callable[[Any], T], items: Iterable[Any]) -> list[T]:
        """``[work(i) for i in items]``, at most ``IN_FLIGHT`` at once, in order."""
        items = list(items)
        if len(items) <= 1:
            return [work(i) for i in items]
        with ThreadPoolExecutor(max_workers=min(IN_FLIGHT, len(items))) as pool:
            futures = [pool.submit(work, i) for i in items]
            try:
                return [f.result() for f in futures]
            except BaseException:
                for f in futures:  # a server that stopped answering: fail once, not once per item
                    f.cancel()
                raise

    # ---- registered models

    def find_model(self, name: str) -> Any:
        """The RegisteredModel named ``name`` (as the database compares names), or None."""
        from model_registry.types import RegisteredModel
        from mr_openapi import RegisteredModel as Wire

        raw = self.request("GET", "/registered_model", {"name": name}, missing_ok=True)
        return typed(RegisteredModel, Wire, raw) if raw else None

    def models(self) -> list[Any]:
        """Every RegisteredModel, as the client's type."""
        from model_registry.types import RegisteredModel
        from mr_openapi import RegisteredModel as Wire

        return [typed(RegisteredModel, Wire, m) for m in self.pages("/registered_models")]

    def model(self, model_id: str) -> Any:
        """The RegisteredModel with id ``model_id``, as the client's type, or None."""
        from model_registry.types import RegisteredModel
        from mr_openapi import RegisteredModel as Wire

        raw = self.request("GET", f"/registered_models/{model_id}", missing_ok=True)
        return typed(RegisteredModel, Wire, raw) if raw else None

    def save_model(self, model: Any) -> Any:
        """Create (no id) or update a RegisteredModel; returns it as stored.

        An update sends every field: the server gives a field it is not sent its default (``state``: LIVE).
        """
        from model_registry.types import RegisteredModel
        from mr_openapi import RegisteredModel as Wire

        if model.id:
            raw = self.request("PATCH", f"/registered_models/{model.id}", body=model.update().to_dict())
        else:
            raw = self.request("POST", "/registered_models", body=model.create().to_dict())
        return typed(RegisteredModel, Wire, raw)

    # ---- model versions

    def find_version(self, model_id: str, name: str) -> Any:
        """Version ``name`` of model ``model_id`` (as the database compares names), or None."""
        from model_registry.types import ModelVersion
        from mr_openapi import ModelVersion as Wire

        raw = self.request("GET", "/model_version", {"name": name, "parentResourceId": model_id}, missing_ok=True)
        return typed(ModelVersion, Wire, raw) if raw else None

    def versions(self, model_id: str | None = None) -> list[Version]:
        """Every version of model ``model_id`` (of every model when None), read from one listing."""
        path = "/model_versions" if model_id is None else f"/registered_models/{model_id}/versions"
        return [Version(v) for v in self.pages(path)]

    def versions_since(self, since_ms: int) -> list[Version]:
        """The versions of every model created at or after ``since_ms`` (epoch ms, the server's clock).

        Pages of the newest versions (by id, which grows with each new entity) are read until one reaches
        back before ``since_ms``: the cost follows the versions written since then, not the registry's size.
        """
        found: list[Version] = []
        query: dict[str, Any] = {"orderBy": "ID", "sortOrder": "DESC", "pageSize": 20}
        while True:
            page = self.request("GET", "/model_versions", query) or {}
            items = [Version(v) for v in page.get("items") or []]
            found.extend(items)
            token = page.get("nextPageToken")
            if not items or not token or int(items[-1].create_time_since_epoch or 0) < since_ms:
                return [v for v in found if int(v.create_time_since_epoch or 0) >= since_ms]
            query = {**query, "nextPageToken": token, "pageSize": min(PAGE, query["pageSize"] * 4)}

    def version_names(self, model_id: str) -> dict[str, tuple[str, str | None]]:
        """A model's versions as ``{id: (name, run id)}``, for name checks; re-reads only what changed.

        The first call (and any call ``FULL_EVERY_S`` after the last full listing) lists the model's
        versions; the calls in between read them newest update first and stop below the newest update
        time seen before minus ``FRESH_MS``, so a version written (or renamed) since is seen without
        listing them all again. Only names and run ids are kept, for at most ``CACHED_MODELS`` models.
        """
        now = time.monotonic()
        with self.__lock:
            known = self.__names.get(model_id)
        found: dict[str, tuple[str, str | None]]
        if known is None or now - known[2] > FULL_EVERY_S:
            listed = self.versions(model_id)
            found = {str(v.id): _name_entry(v) for v in listed}
            newest = max((int(v.last_update_time_since_epoch or 0) for v in listed), default=0)
            listed_at = now
        else:
            found, newest, listed_at = dict(known[0]), known[1], known[2]
            floor = newest - FRESH_MS
            query: dict[str, Any] = {"orderBy": "LAST_UPDATE_TIME", "sortOrder": "DESC", "pageSize": 10}
            path = f"/registered_models/{model_id}/versions"
            while True:
                page = self.request("GET", path, query) or {}
                items = [Version(v) for v in page.get("items") or []]
                for v in items:
                    found[str(v.id)] = _name_entry(v)
                    newest = max(newest, int(v.last_update_time_since_epoch or 0))
                token = page.get("nextPageToken")
                if not items or not token or int(items[-1].last_update_time_since_epoch or 0) < floor:
                    break
                query = {**query, "nextPageToken": token, "pageSize": min(PAGE, query["pageSize"] * 4)}
        with self.__lock:
            self.__names.pop(model_id, None)
            self.__names[model_id] = (found, newest, listed_at)
            while len(self.__names) > CACHED_MODELS:
                self.__names.pop(next(iter(self.__names)))
        return found

    def forget(self, model_id: str) -> None:
        """Drop what :meth:`version_names` knows of a model: its next call lists them all again."""
        with self.__lock:
            self.__names.pop(model_id, None)

    def version(self, version_id: str) -> Any:
        """The ModelVersion with id ``version_id``, as the client's type."""
        from model_registry.types import ModelVersion
        from mr_openapi import ModelVersion as Wire

        return typed(ModelVersion, Wire, self.request("GET", f"/model_versions/{version_id}"))

    def save_version(self, version: Any, model_id: str | None = None) -> Any:
        """Create (no id; ``model_id`` required) or update a ModelVersion (every field, as :meth:`save_model`);
        returns it as stored."""
        from model_registry.types import ModelVersion
        from mr_openapi import ModelVersion as Wire

        if version.id:
            raw = self.request("PATCH", f"/model_versions/{version.id}", body=version.update().to_dict())
        else:
            if model_id is None:
                raise InvalidInput("model_id", model_id, "the id of the model a new version belongs to")
            body = version.create(registered_model_id=model_id).to_dict()
            raw = self.request("POST", "/model_versions", body=body)
        return typed(ModelVersion, Wire, raw)

    # ---- artifacts

    def model_artifact(self, version_id: str) -> Any:
        """The first ModelArtifact of a version, or None."""
        from model_registry.types import Artifact, ModelArtifact
        from mr_openapi import Artifact as Wire

        items = self.pages(f"/model_versions/{version_id}/artifacts")
        arts = [Artifact.validate_artifact(Wire.from_dict(a)) for a in items]
        return next((a for a in arts if isinstance(a, ModelArtifact)), None)

    def save_artifact(self, artifact: Any) -> None:
        """Update a ModelArtifact (every field, as :meth:`save_model`)."""
        self.request("PATCH", f"/model_artifacts/{artifact.id}", body=artifact.update().to_dict())

    def add_artifact(self, version_id: str, artifact: Any) -> Any:
        """Write ``artifact`` (a ``model_registry.types.ModelArtifact``) onto a version."""
        from model_registry.types import Artifact
        from mr_openapi import Artifact as Wire

        raw = self.request("POST", f"/model_versions/{version_id}/artifacts", body=artifact.wrap().to_dict())
        return Artifact.validate_artifact(Wire.from_dict(raw))


# --------------------------------------------------------------------------- one session per client

_SESSIONS: weakref.WeakKeyDictionary[Any, RegistrySession] = weakref.WeakKeyDictionary()
_SESSIONS_LOCK = threading.Lock()


def _new_sessions_lock() -> None:
    global _SESSIONS_LOCK  # noqa: PLW0603 - a forked child must not inherit a lock another thread held
    _SESSIONS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_sessions_lock)


def attach(registry: ModelRegistry, session: RegistrySession) -> None:
    """Keep ``session`` as the one :func:`session_for` gives for ``registry`` (for the client's lifetime)."""
    with _SESSIONS_LOCK:
        _SESSIONS[registry] = session


def session_for(registry: ModelRegistry) -> RegistrySession:
    """The session :func:`mrhelpers.connect` made with ``registry``.

    Raises:
        InvalidInput: ``registry`` was not made by :func:`mrhelpers.connect` (a client made with
            ``ModelRegistry(...)`` does not tell its URL and token through its public API).
    """
    try:
        with _SESSIONS_LOCK:
            found = _SESSIONS.get(registry)
    except TypeError:  # not weak-referenceable (None, a str ...): not a client at all
        found = None
    if found is None:
        raise InvalidInput(
            "registry",
            type(registry).__name__,
            "a client from mrhelpers.connect(settings): mrhelpers talks to the registry "
            "with the URL and token it connected with, which a client made with ModelRegistry(...) does not "
            "show through its public API. Keep your own client for its methods and pass mh.connect(settings) here",
        )
    return found
