"""Settings: the one reader of ``MRH_*`` variables, when :meth:`Settings.from_env` is called (docs/settings.md)."""

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
    """What core asks a backend; :class:`mrhelpers.backends.Backend` adds the operations."""

    name: str

    def settings_defaults(self, pick: Callable[..., Any], state_dir: Path) -> dict[str, Any]: ...  # URLs, token
    def component_registry_url(self, settings: Settings) -> str: ...  # the URL a pipeline component uses
    def unreachable_hint(self, settings_secret_name: str) -> str: ...  # what to check when the registry is down
    def run_link(self, settings: Settings, run_id: str) -> str | None: ...  # where a reader sees the run
    def run_started(self, settings: Settings, run_id: str, run_name: str | None = None) -> int | None: ...  # epoch ms


BACKENDS: dict[str, BackendProfile] = {}
"""The backends by name, filled by :mod:`mrhelpers.backends` (imported by ``import mrhelpers``)."""


def register_backend(backend: BackendProfile) -> None:
    """Make ``backend`` selectable as ``Settings(backend=backend.name)``."""
    BACKENDS[backend.name] = backend


TOKEN_ENV = "MODEL_REGISTRY_TOKEN"  # noqa: S105 - the variable through which a pipeline task gets the token
SECRET_TOKEN_KEY = "token"  # noqa: S105 - the token's key in the Secret or the local secret store
DEFAULT_SECRET_NAME = "model-registry-auth"  # noqa: S105
CLUSTER_REGISTRY_URL = "http://model-registry-service.{namespace}.svc.cluster.local:8080"
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_COMPONENT_IMAGE = "localhost/mrhelpers-python:0.1.0"
"""The packaged components' image when ``setup/versions.env`` (its ``COMPONENT_IMAGE``) is not at hand."""


def serviceaccount_dir(settings: Settings | None = None) -> Path:
    """``settings.serviceaccount_dir``; without settings ``MRH_SERVICEACCOUNT_DIR`` or :data:`SERVICEACCOUNT_DIR`."""
    if settings is not None:
        return settings.serviceaccount_dir
    return Path(os.environ.get("MRH_SERVICEACCOUNT_DIR") or SERVICEACCOUNT_DIR)


def in_cluster(settings: Settings | None = None) -> bool:
    """True inside a pod: the API server's address is in the environment and a ServiceAccount token is mounted."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (serviceaccount_dir(settings) / "token").is_file()


def pod_namespace(settings: Settings | None = None) -> str | None:
    """The namespace of the pod this runs in (its ServiceAccount's namespace file), or None outside a pod."""
    if not in_cluster(settings):
        return None
    try:
        return (serviceaccount_dir(settings) / "namespace").read_text().strip() or None
    except OSError:
        return None


@dataclasses.dataclass(frozen=True, repr=False)
class Secret:
    """A string that never shows itself in repr, str, logs or notebook outputs; :meth:`reveal` gives it."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "Secret('********')" if self._value else "Secret('')"

    __str__ = __repr__


def project_root() -> Path | None:
    """The clone of this project the package is imported from (``setup/versions.env`` beside it), or None."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "setup" / "versions.env").is_file() else None


def versions(path: Path | None = None) -> dict[str, str]:
    """The version matrix ``setup/versions.env`` of the clone (or ``path``): ``{"KFP_VERSION": ...}``.

    Raises:
        FileNotFoundError: Not a clone. ValueError: A line that is not ``KEY=VALUE``.
    """
    if path is None and project_root() is None:
        raise FileNotFoundError("setup/versions.env not found: mrhelpers is not imported from a clone.")
    path = path or project_root() / "setup" / "versions.env"
    lines = [raw.strip() for raw in path.read_text().splitlines()]
    pairs = [line.partition("=") for line in lines if line and not line.startswith("#")]
    if bad := ["".join(p) for p in pairs if not p[1] or not p[0].isidentifier()]:
        raise ValueError(f"{path}: malformed line {bad[0]!r}; expected KEY=VALUE")
    return {key: value for key, _, value in pairs}


def _default_dir(variable: str, in_clone: str, elsewhere: str) -> Path:
    if os.environ.get(variable):
        return Path(os.environ[variable]).expanduser().resolve()
    return project_root() / ".mrh" / in_clone if project_root() else Path.home() / elsewhere


def default_state_dir() -> Path:
    """``MRH_STATE_DIR``, else ``.mrh/stack`` in a clone, else ``~/.local/state/mrhelpers``."""
    return _default_dir("MRH_STATE_DIR", "stack", ".local/state/mrhelpers")


def default_bin_dir() -> Path:
    """``MRH_BIN_DIR``, else ``.mrh/bin`` in a clone, else ``~/.local/share/mrhelpers/bin``."""
    return _default_dir("MRH_BIN_DIR", "bin", ".local/share/mrhelpers/bin")


def default_component_image() -> str:
    """``COMPONENT_IMAGE`` of ``setup/versions.env`` in a clone, else :data:`DEFAULT_COMPONENT_IMAGE`."""
    return versions().get("COMPONENT_IMAGE", DEFAULT_COMPONENT_IMAGE) if project_root() else DEFAULT_COMPONENT_IMAGE


def read_stack_state(state_dir: Path) -> dict[str, Any]:
    """The local stack's ``<state_dir>/state.json`` (ports, URLs), or ``{}`` when there is none."""
    path = state_dir / "state.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except json.JSONDecodeError as exc:
        fix = f"valid JSON written by `make up` ({exc}); delete it and run `make up` again"
        raise InvalidInput("state file", str(path), fix) from None


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where things are and who acts; build one with :meth:`from_env`. The tokens are :class:`Secret`\\ s.

    An empty ``component_registry_url`` becomes the backend's (local: ``registry_url``; cluster: the in-cluster
    DNS name), an empty ``pipeline_root`` ``<state_dir>/pipeline-root``.
    """

    backend: str = "local"
    registry_url: str = "http://127.0.0.1:8080"
    author: str = "mrhelpers"
    namespace: str = "local"
    token: Secret = Secret("")
    secret_name: str = DEFAULT_SECRET_NAME
    kfp_host: str = "http://127.0.0.1:8888"
    registry_ui_url: str = "http://127.0.0.1:8084"
    kfp_ui_url: str = "http://127.0.0.1:8080"
    pipeline_root: str = ""
    state_dir: Path = dataclasses.field(default_factory=default_state_dir)
    bin_dir: Path = dataclasses.field(default_factory=default_bin_dir)
    kfp_token: Secret = Secret("")
    poll_seconds: float = 5.0
    serviceaccount_dir: Path = Path(SERVICEACCOUNT_DIR)
    component_image: str = dataclasses.field(default_factory=default_component_image)
    component_registry_url: str = ""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise InvalidInput("backend", self.backend, f"one of {', '.join(BACKENDS)} (MRH_BACKEND or backend=...)")
        try:
            poll_seconds = float(self.poll_seconds)
        except (TypeError, ValueError):
            raise InvalidInput("poll_seconds", self.poll_seconds, "a number of seconds (MRH_POLL_SECONDS)") from None
        fixed = {
            name: Path(getattr(self, name)).expanduser() for name in ("state_dir", "bin_dir", "serviceaccount_dir")
        }
        for name in ("token", "kfp_token"):
            if not isinstance(getattr(self, name), Secret):
                fixed[name] = Secret(str(getattr(self, name) or ""))
        fixed.update(poll_seconds=poll_seconds, registry_url=str(self.registry_url).rstrip("/"))
        fixed["pipeline_root"] = self.pipeline_root or str(fixed["state_dir"] / "pipeline-root")
        for name, value in fixed.items():
            object.__setattr__(self, name, value)
        if not self.component_registry_url:
            object.__setattr__(self, "component_registry_url", self.backend_impl().component_registry_url(self))

    def backend_impl(self) -> Any:
        """The backend object (:class:`mrhelpers.backends.Backend`) that :attr:`backend` names."""
        return BACKENDS[self.backend]

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed; a component registry URL that was the backend's default follows them."""
        if self.component_registry_url == self.backend_impl().component_registry_url(self):
            changes.setdefault("component_registry_url", "")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Settings from the ``MRH_*`` variables, then ``overrides`` (``None`` and ``""`` ones are ignored, so a
        notebook can pass its parameters straight through); :class:`InvalidInput` for an unknown one."""
        fields = [f.name for f in dataclasses.fields(cls)]
        if unknown := sorted(set(overrides) - set(fields)):
            raise InvalidInput("setting", unknown[0], f"one of {', '.join(sorted(fields))}")
        given = {k: v for k, v in overrides.items() if v not in (None, "")}

        def pick(name: str, default: Any = None) -> Any:
            return given.get(name, os.environ.get(f"MRH_{name.upper()}") or default)

        values = {name: value for name in fields if (value := pick(name)) is not None}
        values["state_dir"] = Path(values.get("state_dir") or default_state_dir())
        if values.setdefault("backend", "local") not in BACKENDS:
            cls(backend=values["backend"])  # raises the error that names the choices
        values.update(BACKENDS[values["backend"]].settings_defaults(pick, values["state_dir"].expanduser()))
        if "author" not in values:
            try:
                values["author"] = getpass.getuser()
            except (KeyError, OSError):
                values["author"] = "mrhelpers"
        return cls(**values)
