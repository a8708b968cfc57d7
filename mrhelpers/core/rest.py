"""The HTTP session beside each client (keep-alive, bounded, retried): every request mrhelpers makes to the
registry, with bodies and answers in the client's public types (``docs/architecture.md`` says why)."""

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
"""On a version: its ``lineage.id``, written with the version (see docs/guarantees.md)."""
PAGE = 1000  # entities per listed page (the server's largest)
IN_FLIGHT = 6
"""Most requests in flight per session: the server keeps 2 idle database connections and opens one per extra request."""
TIMEOUT = (5.0, 30.0)  # seconds to connect, and to wait for an answer, per attempt
MAX_WAIT_S = 30.0
"""Most seconds one request waits in all, retries included, before :class:`RegistryUnavailable`."""
FRESH_MS = 1000  # how far back before the newest update seen a refresh of version names re-reads
FULL_EVERY_S = 30.0  # seconds after which a model's version names are listed in full again
CACHED_MODELS = 64  # most models whose version names one session keeps
_DATASTORE_DOWN = re.compile("dial tcp|connection refused|bad connection|invalid connection|Datastore service is down")


@functools.cache
def api_path(source: str | None = None) -> str:
    """The REST prefix (``/api/model_registry/<version>``) the installed client calls, read from its generated API
    module (or from ``source``, such a module's code)."""
    if source is None:
        import inspect

        from mr_openapi.api import model_registry_service_api

        source = inspect.getsource(model_registry_service_api)
    found = re.search(r'resource_path="(/api/model_registry/[^/"]+)/registered_models"', source)
    if found is None:
        raise MRHelpersError(
            "cannot tell which REST path the installed model-registry client calls (its generated "
            "mr_openapi.api.model_registry_service_api names no /api/model_registry/<version>/registered_models). "
            "Install a model-registry version that setup/constraints.txt or pyproject.toml allows."
        )
    return found.group(1)


class RegistryHttpError(MRHelpersError):
    """An error status other than a refused token: ``status``, ``method``, ``path``, ``body`` (the answer's start)."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        self.status, self.method, self.path, self.body = status, method, path, body
        super().__init__(f"HTTP {status} from the Model Registry on {method} {path}: {body}")


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an exception carries (ours, or the client's), else None."""
    status = getattr(exc, "status", None)
    return status if isinstance(status, int) else None


def _datastore_down(exc: BaseException) -> bool:
    """An HTTP 500 saying the server lost its database."""
    return status_of(exc) == 500 and _DATASTORE_DOWN.search(str(exc)) is not None


def _retryable(exc: BaseException) -> bool:
    """A lost connection, a timeout, a gateway error, a lost database, or a deadlock MariaDB rolled back."""
    import aiohttp  # what the client's own calls raise
    import requests

    lost = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    lost += (aiohttp.ClientConnectionError, asyncio.TimeoutError, ConnectionError, TimeoutError)
    rolled_back = status_of(exc) == 500 and "try restarting transaction" in str(exc)
    return isinstance(exc, lost) or status_of(exc) in (502, 503, 504) or _datastore_down(exc) or rolled_back


def with_retries(
    make: Callable[[], T], url: str, hint: str, secret_name: str, retries: int, backoff: float,
    deadline: float | None = None,
) -> T:  # fmt: skip
    """Call ``make()``, retrying what a restart or a lost connection explains with doubling waits, up to ``retries``
    attempts or ``deadline`` (``time.monotonic()``; default ``MAX_WAIT_S`` from now); an error after a retry carries
    ``after_retry = True``."""
    deadline = time.monotonic() + MAX_WAIT_S if deadline is None else deadline
    delay = backoff
    for attempt in range(1, retries + 1):
        try:
            return make()
        except Exception as exc:
            if attempt > 1 and isinstance(exc, RegistryHttpError):
                exc.after_retry = True  # a 409 then may answer our own write, whose answer was lost
            status = status_of(exc)
            if status in (401, 403):
                raise AuthError(
                    f"Model Registry at {url} refused the token (HTTP {status}). The token comes from MRH_TOKEN if "
                    f"set, else from the Secret {secret_name!r}: locally the file <state dir>/secrets/{secret_name}/"
                    f"token (notebook 01 or mrhelpers.ensure_secret writes it); on a cluster `kubectl get secret "
                    f"{secret_name} -n <namespace>`. Store the token the registry expects and retry."
                ) from None
            import aiohttp
            import requests

            if isinstance(exc, (requests.exceptions.SSLError, ssl.SSLError, aiohttp.ClientSSLError)):
                raise RegistryUnavailable(
                    f"Model Registry at {url}: the TLS handshake failed ({exc}), so nothing was sent. Either its "
                    "certificate is not trusted here (add its CA to the system's certificates, or point "
                    "SSL_CERT_FILE at a PEM file holding it), or it does not speak TLS (use http:// in registry_url)."
                ) from None
            if not _retryable(exc):
                raise
            if attempt == retries or time.monotonic() + delay >= deadline:
                reason = f"{type(exc).__name__}: {exc}"
                if _datastore_down(exc):
                    reason = "it answers, but its database does not: HTTP 500 " + str(exc).strip().splitlines()[-1]
                raise RegistryUnavailable(
                    f"Model Registry at {url} is not reachable ({reason}; gave up after {attempt} attempt(s)). {hint}"
                ) from None
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover


def decode_properties(raw: dict[str, Any] | None) -> dict[str, Any]:
    """Custom properties from the server's JSON as the client reads them, but a double stays a float (``1e20``)."""
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


def _typed(kind: str, raw: dict[str, Any] | None) -> Any:
    """``raw`` (the server's JSON) as the client's type ``kind`` (its doubles kept floats), or None."""
    if not raw:
        return None
    import mr_openapi
    from model_registry import types

    out = getattr(types, kind).from_basemodel(getattr(mr_openapi, kind).from_dict(raw))
    if out.custom_properties:
        out.custom_properties = decode_properties(raw.get("customProperties")) or out.custom_properties
    return out


def _artifact(raw: dict[str, Any]) -> Any:
    """An artifact from the server's JSON as the client's type (a ModelArtifact, a DocArtifact ...)."""
    from model_registry.types import Artifact
    from mr_openapi import Artifact as Wire

    return Artifact.validate_artifact(Wire.from_dict(raw))


class Version:
    """A listed model version read straight from the JSON, with the attributes of the client's ModelVersion."""

    __slots__ = (
        "id", "name", "state", "author", "description", "registered_model_id",
        "create_time_since_epoch", "last_update_time_since_epoch", "custom_properties",
    )  # fmt: skip

    def __init__(self, raw: dict[str, Any]) -> None:
        for attr, key in zip(self.__slots__[:-1], _CAMEL, strict=True):  # the JSON's names, in camel case
            setattr(self, attr, raw.get(key))
        self.custom_properties = decode_properties(raw.get("customProperties")) or None

    def __repr__(self) -> str:
        return f"Version(id={self.id!r}, name={self.name!r}, model={self.registered_model_id!r})"


_CAMEL = tuple(re.sub(r"_(\w)", lambda m: m.group(1).upper(), a) for a in Version.__slots__[:-1])


class RegistrySession:
    """The HTTP session of one registry client: retries, error mapping, typed calls; thread- and fork-safe."""

    def __init__(
        self, url: str, token: str | None, author: str, hint: str, secret_name: str, *,
        retries: int = 3, backoff: float = 0.5,
    ) -> None:  # fmt: skip
        self.url = url.rstrip("/")
        self.author, self.hint, self.secret_name = author, hint, secret_name
        self.retries, self.backoff = retries, backoff
        self.__token = Secret(token or "")
        self.__lock, self.__gate = threading.Lock(), threading.BoundedSemaphore(IN_FLIGHT)
        self.__http: requests.Session | None = None
        self.__pid = os.getpid()
        self.__names: dict[str, tuple[dict[str, tuple[str, str | None]], int, float]] = {}

    def __repr__(self) -> str:
        return f"RegistrySession(url={self.url!r}, author={self.author!r})"

    def __getstate__(self) -> None:
        raise TypeError("a RegistrySession holds a token and open connections: connect() again in the other process")

    def http(self) -> requests.Session:
        """This process's ``requests.Session`` (made on first use, again after a fork)."""
        if self.__pid != os.getpid():  # a forked child: the parent's lock, gate and sockets are not its own
            self.__lock, self.__gate = threading.Lock(), threading.BoundedSemaphore(IN_FLIGHT)
            self.__http, self.__pid = None, os.getpid()
        with self.__lock:
            if self.__http is None:
                import requests
                from requests.adapters import HTTPAdapter

                class SameTrustAdapter(HTTPAdapter):
                    """Trusts what the client trusts: the system's certificates or SSL_CERT_FILE, not certifi's."""

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
        self, method: str, path: str, params: dict | None = None, body: Any = None, left: float = MAX_WAIT_S
    ) -> Any:
        """One request, no retries, within ``left`` seconds (a free slot included): its JSON, or RegistryHttpError."""
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
        self, method: str, path: str, params: dict | None = None, body: Any = None, *, missing_ok: bool = False
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
        """Run ``make()`` with this registry's retries and errors, within ``MAX_WAIT_S`` (or ``deadline``)."""
        return with_retries(make, self.url, self.hint, self.secret_name, self.retries, self.backoff, deadline)

    def pages(self, path: str, params: dict | None = None, *, until: Callable[[Any], bool] | None = None) -> list[dict]:
        """Every item of a listing, ``PAGE`` at a time; with ``until``, growing pages until a last item satisfies it."""
        items: list[dict[str, Any]] = []
        query = {"pageSize": PAGE, **(params or {})}
        while True:
            page = self.request("GET", path, query) or {}
            items.extend(page.get("items") or [])
            token = page.get("nextPageToken")
            if not token or not page.get("items") or (until is not None and until(page["items"][-1])):
                return items
            query = {**query, "nextPageToken": token, "pageSize": min(PAGE, query["pageSize"] * 4)}

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

    # ---- registered models (an update sends every field: the server gives one it is not sent its default)

    def find_model(self, name: str) -> Any:
        """The RegisteredModel named ``name`` (as the database compares names), or None."""
        return _typed("RegisteredModel", self.request("GET", "/registered_model", {"name": name}, missing_ok=True))

    def models(self) -> list[Any]:
        return [_typed("RegisteredModel", m) for m in self.pages("/registered_models")]

    def model(self, model_id: str) -> Any:
        return _typed("RegisteredModel", self.request("GET", f"/registered_models/{model_id}", missing_ok=True))

    def save(self, entity: Any, model_id: str | None = None) -> Any:
        """Create (no id; a version needs ``model_id``) or update a RegisteredModel or ModelVersion, as stored."""
        kind = type(entity).__name__
        path = "/registered_models" if kind == "RegisteredModel" else "/model_versions"
        if entity.id:
            raw = self.request("PATCH", f"{path}/{entity.id}", body=entity.update().to_dict())
        else:
            ids = {"registered_model_id": model_id} if kind == "ModelVersion" else {}
            raw = self.request("POST", path, body=entity.create(**ids).to_dict())
        return _typed(kind, raw)

    save_model = save_version = save

    # ---- model versions

    def find_version(self, model_id: str, name: str) -> Any:
        """Version ``name`` of model ``model_id`` (as the database compares names), or None."""
        query = {"name": name, "parentResourceId": model_id}
        return _typed("ModelVersion", self.request("GET", "/model_version", query, missing_ok=True))

    def versions(self, model_id: str | None = None) -> list[Version]:
        """Every version of model ``model_id`` (of every model when None), from one listing."""
        path = "/model_versions" if model_id is None else f"/registered_models/{model_id}/versions"
        return [Version(v) for v in self.pages(path)]

    def versions_since(self, since: int | None) -> list[Version]:
        """Every model's versions created at or after ``since`` (epoch ms, the server's clock), newest pages first;
        None: the newest page of 20."""
        query, floor = {"orderBy": "ID", "sortOrder": "DESC", "pageSize": 20}, since or 0
        listed = self.pages(
            "/model_versions", query, until=lambda v: since is None or int(v.get("createTimeSinceEpoch") or 0) < floor
        )
        return [v for v in map(Version, listed) if int(v.create_time_since_epoch or 0) >= floor]

    def version_names(self, model_id: str) -> dict[str, tuple[str, str | None]]:
        """A model's versions as ``{id: (name, run id)}``: all every ``FULL_EVERY_S``, else the recently updated."""
        now = time.monotonic()
        known = self.__names.get(model_id)
        path = f"/registered_models/{model_id}/versions"
        if known is None or now - known[2] > FULL_EVERY_S:
            listed, found, newest, listed_at = self.pages(path), {}, 0, now
        else:
            found, newest, listed_at = dict(known[0]), known[1], known[2]
            query = {"orderBy": "LAST_UPDATE_TIME", "sortOrder": "DESC", "pageSize": 10}
            floor = newest - FRESH_MS
            listed = self.pages(path, query, until=lambda v: int(v.get("lastUpdateTimeSinceEpoch") or 0) < floor)
        for v in map(Version, listed):
            found[str(v.id)] = (str(v.name), (v.custom_properties or {}).get(SOURCE_ID_KEY))
            newest = max(newest, int(v.last_update_time_since_epoch or 0))
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
        return _typed("ModelVersion", self.request("GET", f"/model_versions/{version_id}"))

    # ---- artifacts

    def model_artifact(self, version_id: str) -> Any:
        """The first ModelArtifact of a version, or None."""
        from model_registry.types import ModelArtifact

        listed = map(_artifact, self.pages(f"/model_versions/{version_id}/artifacts"))
        return next((a for a in listed if isinstance(a, ModelArtifact)), None)

    def save_artifact(self, artifact: Any) -> None:
        self.request("PATCH", f"/model_artifacts/{artifact.id}", body=artifact.update().to_dict())

    def add_artifact(self, version_id: str, artifact: Any) -> Any:
        """Write ``artifact`` (a ``model_registry.types.ModelArtifact``) onto a version."""
        return _artifact(
            self.request("POST", f"/model_versions/{version_id}/artifacts", body=artifact.wrap().to_dict())
        )


# A get or a set of one key is atomic under the GIL: no lock (which a forked child could inherit held).
_SESSIONS: weakref.WeakKeyDictionary[Any, RegistrySession] = weakref.WeakKeyDictionary()


def attach(registry: ModelRegistry, session: RegistrySession) -> None:
    """Keep ``session`` as the one :func:`session_for` gives for ``registry`` (for the client's lifetime)."""
    _SESSIONS[registry] = session


def session_for(registry: ModelRegistry) -> RegistrySession:
    """The session :func:`mrhelpers.connect` made with ``registry``; ``InvalidInput`` for any other object."""
    try:
        found = _SESSIONS.get(registry)
    except TypeError:  # not weak-referenceable (None, a str ...): not a client at all
        found = None
    if found is None:
        raise InvalidInput(
            "registry",
            type(registry).__name__,
            "a client from mrhelpers.connect(settings): mrhelpers talks to the registry with the URL and token "
            "it connected with, which a client made with ModelRegistry(...) does not show through its public "
            "API. Keep your own client for its methods and pass mh.connect(settings) here",
        )
    return found
