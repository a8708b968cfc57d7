"""Settings: where the registry is, who registers, and where local state lives.

Everything is read from environment variables prefixed ``MRH_`` when
:meth:`Settings.from_env` is called, never at import time.

| variable | default |
|---|---|
| ``MRH_BACKEND`` | ``local`` (or ``cluster``) |
| ``MRH_REGISTRY_URL`` | local: the URL the running stack recorded; cluster: ``http://127.0.0.1:8082`` |
| ``MRH_AUTHOR`` | the login name |
| ``MRH_NAMESPACE`` | local: ``local``; cluster: inside a pod its own namespace, else ``kubeflow`` |
| ``MRH_COMPONENT_REGISTRY_URL`` | cluster: ``http://model-registry-service.<namespace>.svc.cluster.local:8080`` |
| ``MRH_TOKEN`` | local: the token in the local secret store, if any; cluster: none |
| ``MRH_SECRET_NAME`` | ``model-registry-auth`` |
| ``MRH_KFP_HOST`` | ``http://127.0.0.1:8888`` (cluster only); inside a pod: unset (the in-cluster KFP API) |
| ``MRH_KFP_TOKEN`` | none: a bearer token for a KFP API behind authentication (inside a pod: the mounted KFP token) |
| ``MRH_SERVICEACCOUNT_DIR`` | ``/var/run/secrets/kubernetes.io/serviceaccount`` (where a pod's token is mounted) |
| ``MRH_REGISTRY_UI_URL`` | ``http://127.0.0.1:8084`` (cluster only) |
| ``MRH_KFP_UI_URL`` | ``http://127.0.0.1:8080`` (cluster only) |
| ``MRH_PIPELINE_ROOT`` | local: ``<state dir>/pipeline-root`` |
| ``MRH_STATE_DIR`` | ``<project>/.mrh/stack`` in a clone, else ``~/.local/state/mrhelpers`` |
| ``MRH_BIN_DIR`` | ``<project>/.mrh/bin`` in a clone, else ``~/.local/share/mrhelpers/bin`` |
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from mrhelpers.core.errors import InvalidInput


class BackendProfile(Protocol):
    """What core needs to know about a backend; :class:`mrhelpers.backends.Backend` adds the operations.

    Core never compares a backend's name: it asks the object :meth:`Settings.backend_impl` returns.
    """

    name: str

    def settings_defaults(self, pick: Callable[..., Any], state_dir: Path) -> dict[str, Any]:
        """Defaults for ``registry_url``, ``namespace``, ``token`` and ``kfp_host`` on this backend."""
        ...

    def component_registry_url(self, settings: Settings) -> str:
        """The registry URL as a pipeline component on this backend must use it."""
        ...

    def unreachable_hint(self, settings_secret_name: str) -> str:
        """What to check when the registry does not answer."""
        ...

    def run_link(self, settings: Settings, run_id: str) -> str | None:
        """Where a reader sees pipeline run ``run_id``, or None."""
        ...

    def run_started(self, settings: Settings, run_id: str) -> int | None:
        """Epoch ms (the registry's clock) before which run ``run_id`` registered nothing, or None if unknown."""
        ...


BACKENDS: dict[str, BackendProfile] = {}
"""The backends by name, filled by :mod:`mrhelpers.backends` (imported by ``import mrhelpers``)."""


def register_backend(backend: BackendProfile) -> None:
    """Make ``backend`` selectable as ``Settings(backend=backend.name)``."""
    BACKENDS[backend.name] = backend


TOKEN_ENV = "MODEL_REGISTRY_TOKEN"  # noqa: S105 - a variable name, not a secret
"""Environment variable through which a pipeline component receives the registry token."""
SECRET_TOKEN_KEY = "token"  # noqa: S105
"""Key of the token inside the Secret (Kubernetes) or the local secret store."""
DEFAULT_SECRET_NAME = "model-registry-auth"  # noqa: S105
CLUSTER_REGISTRY_URL = "http://model-registry-service.{namespace}.svc.cluster.local:8080"
"""How a pipeline pod on the cluster reaches the registry (in-cluster DNS), in the namespace it runs in:
``kubeflow`` on the standalone install, the profile namespace (``kubeflow-user-example-com``) on a
multi-user Kubeflow."""
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where Kubernetes mounts a pod's ServiceAccount token, CA certificate and namespace."""


def serviceaccount_dir() -> Path:
    """The folder of the pod's ServiceAccount files: ``MRH_SERVICEACCOUNT_DIR`` or :data:`SERVICEACCOUNT_DIR`."""
    return Path(os.environ.get("MRH_SERVICEACCOUNT_DIR") or SERVICEACCOUNT_DIR)


def in_cluster() -> bool:
    """True inside a pod (a Kubeflow Notebook, a pipeline step): the API server's address is in the
    environment and a ServiceAccount token is mounted."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (serviceaccount_dir() / "token").is_file()


def pod_namespace() -> str | None:
    """The namespace of the pod this runs in (its ServiceAccount's namespace file), or None outside a pod."""
    if not in_cluster():
        return None
    try:
        return (serviceaccount_dir() / "namespace").read_text().strip() or None
    except OSError:
        return None


class Secret:
    """A string that never shows itself in repr, str, logs or notebook outputs.

    Call :meth:`reveal` where the value is really needed.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret value."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def project_root() -> Path | None:
    """The clone of this project the package is imported from, or None.

    A clone is recognised by ``setup/versions.env`` next to the package folder.
    """
    root = Path(__file__).resolve().parents[2]
    return root if (root / "setup" / "versions.env").is_file() else None


def versions(path: Path | None = None) -> dict[str, str]:
    """Read the project's version matrix (``setup/versions.env``).

    Args:
        path: The file to read; defaults to ``setup/versions.env`` of the clone.

    Returns:
        A mapping such as ``{"KFP_VERSION": "2.17.3", ...}``.

    Raises:
        FileNotFoundError: When no versions file exists (not a clone).
    """
    if path is None:
        root = project_root()
        if root is None:
            raise FileNotFoundError(
                "setup/versions.env not found: mrhelpers is not imported from a clone of the project."
            )
        path = root / "setup" / "versions.env"
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{path}: malformed line {raw!r}; expected KEY=VALUE")
        out[key] = value
    return out


def default_state_dir() -> Path:
    """Folder of the local stack's state: ``MRH_STATE_DIR`` or a default (see module doc)."""
    env = os.environ.get("MRH_STATE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    if root is not None:
        return root / ".mrh" / "stack"
    return Path.home() / ".local" / "state" / "mrhelpers"


def default_bin_dir() -> Path:
    """Folder holding the Go-built ``model-registry`` binary: ``MRH_BIN_DIR`` or a default."""
    env = os.environ.get("MRH_BIN_DIR")
    if env:
        return Path(env).expanduser().resolve()
    root = project_root()
    if root is not None:
        return root / ".mrh" / "bin"
    return Path.home() / ".local" / "share" / "mrhelpers" / "bin"


def read_stack_state(state_dir: Path) -> dict[str, Any]:
    """The local stack's recorded state (pids, ports, URLs), or ``{}`` when none."""
    path = state_dir / "state.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            "state file",
            str(path),
            f"valid JSON written by `make up` ({exc}); delete it and run `make up` again",
        ) from None


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where things are and who acts. Build one with :meth:`from_env`.

    The token is a :class:`Secret`: it never appears in ``repr(settings)``.
    """

    backend: str = "local"
    registry_url: str = "http://127.0.0.1:8080"
    author: str = "mrhelpers"
    namespace: str = "local"
    token: Secret = dataclasses.field(default_factory=lambda: Secret(""))
    secret_name: str = DEFAULT_SECRET_NAME
    kfp_host: str = "http://127.0.0.1:8888"
    registry_ui_url: str = "http://127.0.0.1:8084"
    kfp_ui_url: str = "http://127.0.0.1:8080"
    pipeline_root: str = ""
    state_dir: Path = dataclasses.field(default_factory=default_state_dir)
    bin_dir: Path = dataclasses.field(default_factory=default_bin_dir)

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidInput(
                "backend", self.backend, f"one of {', '.join(BACKENDS)} (set MRH_BACKEND or backend=...)"
            )
        if not isinstance(self.token, Secret):
            object.__setattr__(self, "token", Secret(str(self.token or "")))
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        object.__setattr__(self, "bin_dir", Path(self.bin_dir))
        if not self.pipeline_root:
            object.__setattr__(self, "pipeline_root", str(self.state_dir / "pipeline-root"))

    @property
    def component_registry_url(self) -> str:
        """The registry URL as a pipeline component must use it.

        Local components run on this machine and use :attr:`registry_url`; on a
        cluster they use the in-cluster DNS name.
        """
        return self.backend_impl().component_registry_url(self)

    def backend_impl(self) -> Any:
        """The backend object (:class:`mrhelpers.backends.Backend`) that :attr:`backend` names."""
        return BACKENDS[self.backend]

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from ``MRH_*`` environment variables, then ``overrides``.

        Overrides whose value is ``None`` or ``""`` are ignored, so a notebook can
        pass its parameters straight through.

        Raises:
            InvalidInput: For an unknown override or backend.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(overrides) - fields
        if unknown:
            raise InvalidInput("setting", sorted(unknown)[0], f"one of {', '.join(sorted(fields))}")
        given = {k: v for k, v in overrides.items() if v not in (None, "")}

        def pick(name: str, default: Any = None) -> Any:
            if name in given:
                return given[name]
            env = os.environ.get(f"MRH_{name.upper()}")
            return env if env not in (None, "") else default

        backend = pick("backend", "local")
        state_dir = Path(pick("state_dir", None) or default_state_dir()).expanduser()
        bin_dir = Path(pick("bin_dir", None) or default_bin_dir()).expanduser()
        if backend not in BACKENDS:
            raise InvalidInput("backend", backend, f"one of {', '.join(BACKENDS)} (set MRH_BACKEND or backend=...)")
        defaults = BACKENDS[backend].settings_defaults(pick, state_dir)
        token = defaults["token"]
        try:
            default_author = getpass.getuser()
        except (KeyError, OSError):
            default_author = "mrhelpers"
        return cls(
            backend=backend,
            registry_url=str(defaults["registry_url"]).rstrip("/"),
            author=pick("author", default_author),
            namespace=defaults["namespace"],
            token=token if isinstance(token, Secret) else Secret(token or ""),
            secret_name=pick("secret_name", DEFAULT_SECRET_NAME),
            kfp_host=defaults["kfp_host"],
            registry_ui_url=pick("registry_ui_url", "http://127.0.0.1:8084"),
            kfp_ui_url=pick("kfp_ui_url", "http://127.0.0.1:8080"),
            pipeline_root=pick("pipeline_root", ""),
            state_dir=state_dir,
            bin_dir=bin_dir,
        )
