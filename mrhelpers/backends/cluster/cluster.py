"""Notebooks 00 and 04, cluster backend: stand the cluster up, and run pipelines on its KFP API server.

* :func:`up`, :func:`down`, :func:`port_forward` call ``setup/cluster.sh`` (kind + Kubeflow
  Pipelines + Model Registry + its UI, at the versions in ``setup/versions.env``) and stream
  its output; :func:`status` says which forwards answer.
* :func:`submit` compiles the pipeline, uploads it once per content (a pipeline version named
  after its hash, reused when the same YAML is submitted again), creates a run in the
  ``mrhelpers`` experiment and returns a :class:`~mrhelpers.authoring.handles.RunHandle` whose ``wait()``
  polls the run with a progress line. When the run succeeded, its outputs are read back from
  the Model Registry (what the run registered, found by its run id): the registry, not the
  pipeline's object store, is the record a reader needs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mrhelpers.authoring.compiling import compile_pipeline
from mrhelpers.authoring.handles import TERMINAL_STATES, RunHandle, remember
from mrhelpers.core.errors import InvalidInput, MRHelpersError, RunFailed
from mrhelpers.core.inspection import find_versions
from mrhelpers.core.progress import Progress
from mrhelpers.core.registry import connect
from mrhelpers.core.rest import session_for
from mrhelpers.core.settings import Settings, in_cluster, project_root, serviceaccount_dir

EXPERIMENT = "mrhelpers"
"""The KFP experiment every run that :func:`submit` creates goes into."""
_FORWARD_HINT = "Start the port-forwards with `setup/cluster.sh port-forward start` (or `make cluster-forward`)."


# --------------------------------------------------------------------------- setup/cluster.sh


def script() -> Path:
    """The path of ``setup/cluster.sh`` in this clone."""
    root = project_root()
    if root is None:
        raise MRHelpersError(
            "setup/cluster.sh is part of the project's clone, and mrhelpers is not imported from one. "
            "Clone the project and run `setup/cluster.sh up` there."
        )
    return root / "setup" / "cluster.sh"


def _run_script(*args: str, dry_run: bool = False, check: bool = True) -> int:
    command = ["bash", str(script()), *(["--dry-run"] if dry_run else []), *args]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
    if check and proc.returncode != 0:
        raise MRHelpersError(
            f"`setup/cluster.sh {' '.join(args)}` failed (exit {proc.returncode}); its messages are above. "
            "Re-running it is safe; `python -m mrhelpers doctor` (MRH_BACKEND=cluster) names common causes."
        )
    return proc.returncode


def up(
    settings: Settings | None = None,
    *,
    multi_user: bool = False,
    with_kserve: bool = False,
    dry_run: bool = False,
    rebuild: bool = False,
) -> ClusterStatus:
    """Create (or keep) the kind cluster with KFP, the Model Registry and its UI; start the port-forwards.

    When ``setup/cluster.sh up`` already built what is asked (the mode and KServe it recorded) and
    the endpoints answer, after starting the port-forwards if needed, nothing is rebuilt: notebook 00
    after ``make cluster-up`` (or CI's own ``up`` step) takes seconds, not the whole install again.

    Args:
        settings: Where the forwards are expected (cluster defaults when None).
        multi_user: The full Kubeflow install (the community distribution) instead of standalone KFP.
        with_kserve: Also install KServe (Standard mode), for notebook 07 on a cluster.
        dry_run: Print every command without running any.
        rebuild: Run ``setup/cluster.sh up`` even when what it built answers (it keeps what exists).
    """
    settings = settings or Settings.from_env(backend="cluster")
    if not dry_run and not rebuild and built(multi_user=multi_user, with_kserve=with_kserve):
        current = status(settings)
        if not current.ok:
            port_forward("start", check=False)
            current = status(settings)
        if current.ok:
            print(
                f"The {mode()} cluster that `setup/cluster.sh up` built answers at every endpoint; reusing it "
                "(rebuild=True runs `up` again).",
                flush=True,
            )
            return current
    flags = [*(["--multi-user"] if multi_user else []), *(["--with-kserve"] if with_kserve else [])]
    _run_script("up", *flags, dry_run=dry_run)
    _run_script("port-forward", "start", dry_run=dry_run)
    return status(settings)


def built(*, multi_user: bool = False, with_kserve: bool = False) -> bool:
    """Whether the last ``setup/cluster.sh up`` recorded this mode (and KServe, if asked) in :func:`state_dir`."""
    recorded = (state_dir() / "mode").is_file()
    wanted = "multi-user" if multi_user else "standalone"
    return recorded and mode() == wanted and (not with_kserve or (state_dir() / "kserve").is_file())


def down(*, dry_run: bool = False) -> None:
    """Stop the port-forwards and delete the kind cluster."""
    _run_script("down", dry_run=dry_run)


def port_forward(action: str = "status", *, dry_run: bool = False, check: bool | None = None) -> int:
    """``start``, ``stop`` or ``status`` of the background port-forwards (stopped by pid).

    Raises:
        MRHelpersError: ``start`` or ``stop`` failed (unless ``check=False``).
    """
    if action not in ("start", "stop", "status"):
        raise InvalidInput("port-forward action", action, "start, stop or status")
    return _run_script("port-forward", action, dry_run=dry_run, check=action != "status" if check is None else check)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One address the notebooks use on a cluster and whether it answers."""

    name: str
    url: str
    answers: bool


@dataclasses.dataclass(frozen=True)
class ClusterStatus:
    """The cluster's forwarded endpoints; ``ok`` when all answer."""

    endpoints: tuple[Endpoint, ...]

    @property
    def ok(self) -> bool:
        return all(e.answers for e in self.endpoints)

    def to_frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame([dataclasses.asdict(e) for e in self.endpoints])

    def __str__(self) -> str:
        lines = [f"Cluster endpoints: {'all answer' if self.ok else 'NOT all answer. ' + _FORWARD_HINT}"]
        lines += [f"  {e.name:<12} {e.url:<28} {'answers' if e.answers else 'does not answer'}" for e in self.endpoints]
        return "\n".join(lines)


def _answers(url: str, timeout: float = 2.0) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 80), timeout=timeout):
            return True
    except OSError:
        return False


def state_dir() -> Path:
    """Where ``setup/cluster.sh`` keeps its mode and the port-forwards' pid and log files."""
    env = os.environ.get("MRH_CLUSTER_STATE")
    if env:
        return Path(env)
    root = project_root()
    return (root / ".mrh" / "cluster") if root else Path.home() / ".local" / "state" / "mrhelpers-cluster"


def mode() -> str:
    """``standalone`` or ``multi-user``: what the last ``setup/cluster.sh up`` installed (standalone if none)."""
    try:
        return (state_dir() / "mode").read_text().strip() or "standalone"
    except FileNotFoundError:
        return "standalone"


def status(settings: Settings | None = None) -> ClusterStatus:
    """Which of the KFP UI, KFP API, Model Registry API and UI answer at the URLs ``settings`` name.

    After ``up --multi-user``: the Kubeflow dashboard (Istio gateway) and the registry.
    """
    settings = settings or Settings.from_env(backend="cluster")
    if mode() == "multi-user":  # the dashboard (Istio gateway, where you log in) and the registry
        named = {"kubeflow": settings.kfp_ui_url, "registry": settings.registry_url}
    else:
        named = {
            "kfp-ui": settings.kfp_ui_url,
            "kfp-api": settings.kfp_host,
            "registry": settings.registry_url,
            "registry-ui": settings.registry_ui_url,
        }
    return ClusterStatus(tuple(Endpoint(name, url, _answers(url)) for name, url in named.items()))


# --------------------------------------------------------------------------- Kubernetes and KFP clients


def kube_client(what: str, hint: str = "") -> Any:
    """The ``kubernetes.client`` module, configured now for your cluster.

    Your kubeconfig (``KUBECONFIG``, else ``~/.kube/config``) when there is one, as ``kubectl`` does;
    else, inside a pod (a Kubeflow Notebook, a pipeline step), the pod's ServiceAccount: the API
    server named by ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` and the token and CA
    certificate mounted in :func:`mrhelpers.core.settings.serviceaccount_dir`. The Kubernetes client reads
    ``KUBECONFIG`` once, at import; loading it here, at call time, follows what was set since.

    Raises:
        MRHelpersError: ``what`` cannot be done because neither configuration loads; ``hint`` is appended.
    """
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    kubeconfig = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    has_kubeconfig = any(Path(p).is_file() for p in kubeconfig.split(os.pathsep) if p)
    try:
        if has_kubeconfig or not in_cluster():
            config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))
        else:
            account = serviceaccount_dir()
            InClusterConfigLoader(
                token_filename=str(account / "token"), cert_filename=str(account / "ca.crt")
            ).load_and_set()
    except Exception as exc:  # noqa: BLE001 - a missing file, a bad context, no cluster: the same advice
        raise MRHelpersError(
            f"No cluster to {what}: no kubeconfig loaded ({type(exc).__name__}), and this is not a pod with a "
            f"ServiceAccount token. Check `kubectl cluster-info`, or set KUBECONFIG.{hint}"
        ) from None
    return client


IN_CLUSTER_KFP_HOST = "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
"""The KFP API inside the cluster (its ``ml-pipeline`` Service), where a pod finds it without a port-forward."""


def kfp_client(settings: Settings) -> Any:
    """A ``kfp.Client`` for ``settings.kfp_host`` (UI links point at ``settings.kfp_ui_url``).

    A bearer token for a KFP behind authentication is read from ``MRH_KFP_TOKEN`` (never shown).
    Inside a pod (a Kubeflow Notebook) with no host set, it talks to :data:`IN_CLUSTER_KFP_HOST`,
    and without ``MRH_KFP_TOKEN`` it sends the pod's KFP ServiceAccount token (the file that
    ``KF_PIPELINES_SA_TOKEN_PATH`` names, default ``/var/run/secrets/kubeflow/pipelines/token``,
    which Kubeflow's "Allow access to Kubeflow Pipelines" PodDefault mounts), re-read on each call.
    """
    import warnings

    import kfp
    from kfp.client import KF_PIPELINES_SA_TOKEN_ENV, KF_PIPELINES_SA_TOKEN_PATH
    from kfp.client.set_volume_credentials import ServiceAccountTokenVolumeCredentials

    token = os.environ.get("MRH_KFP_TOKEN") or None
    host = settings.kfp_host or IN_CLUSTER_KFP_HOST
    pod_token = Path(os.environ.get(KF_PIPELINES_SA_TOKEN_ENV) or KF_PIPELINES_SA_TOKEN_PATH)
    credentials = None
    if token is None and in_cluster() and pod_token.is_file():  # a Notebook without the PodDefault has none
        credentials = ServiceAccountTokenVolumeCredentials(str(pod_token))

    def make() -> Any:  # it asks the server's healthz (single- or multi-user) at once
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "only works with KFP v2.0.0-beta.2 and later"
            return kfp.Client(
                host=host,
                namespace=settings.namespace,
                ui_host=settings.kfp_ui_url,
                existing_token=token,
                credentials=credentials,
            )

    return _api_call("connecting", settings.replace(kfp_host=host), make)


def _api_call(what: str, settings: Settings, call: Callable[[], Any]) -> Any:
    """Run one KFP API call; turn connection and HTTP errors into messages that name the fix."""
    import kfp_server_api
    import urllib3

    try:
        return call()
    except TimeoutError:  # kfp.Client gives up on /apis/v2beta1/healthz after 5 tries
        raise MRHelpersError(
            f"{settings.kfp_host} answers, but not as a KFP API server ({what}: no healthz). Point MRH_KFP_HOST "
            f"at the KFP API (the ml-pipeline Service, port 8888). {_FORWARD_HINT}"
        ) from None
    except urllib3.exceptions.HTTPError as exc:
        raise MRHelpersError(
            f"The KFP API server at {settings.kfp_host} does not answer ({what}: {type(exc).__name__}). "
            f"{_FORWARD_HINT} Then check `kubectl -n kubeflow get pods` or `python -m mrhelpers doctor`."
        ) from None
    except kfp_server_api.ApiException as exc:
        hint = {
            401: "it wants authentication: set MRH_KFP_TOKEN, or use the port-forward to ml-pipeline directly",
            403: "your identity may not do this in this namespace (RBAC): check the namespace and your profile",
            404: "the object is gone or the URL is not a KFP API server (is MRH_KFP_HOST the API, not the UI?)",
        }.get(exc.status, "see the message from the server")
        body = (exc.body or "").strip().splitlines()
        raise MRHelpersError(
            f"KFP refused {what} (HTTP {exc.status} {exc.reason}): {body[0][:300] if body else ''}. Hint: {hint}."
        ) from None


def _package(pipeline: Any, settings: Settings) -> tuple[Path, str]:

    name = pipeline.pipeline_spec.pipeline_info.name
    path = compile_pipeline(pipeline, settings.state_dir / "packages" / f"{name}.yaml")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _ensure_pipeline_version(client: Any, settings: Settings, name: str, path: Path, digest: str) -> tuple[str, str]:
    """Upload the pipeline and this content as a version, or reuse what is there; return both ids."""
    version_name = f"{name}-{digest}"  # DNS-1123 safe, like the pipeline name, in case the server checks
    pipeline_id = _api_call("looking up the pipeline", settings, lambda: client.get_pipeline_id(name))
    if pipeline_id is None:
        created = _api_call(
            "uploading the pipeline", settings, lambda: client.upload_pipeline(str(path), pipeline_name=name)
        )
        pipeline_id = created.pipeline_id
    wanted = json.dumps({"predicates": [{"operation": "EQUALS", "key": "display_name", "stringValue": version_name}]})
    found = _api_call(
        "listing pipeline versions",
        settings,
        lambda: client.list_pipeline_versions(pipeline_id, page_size=5, filter=wanted),
    )
    for version in found.pipeline_versions or []:
        if version.display_name == version_name:
            return pipeline_id, version.pipeline_version_id
    created = _api_call(
        "uploading the pipeline version",
        settings,
        lambda: client.upload_pipeline_version(str(path), version_name, pipeline_id=pipeline_id),
    )
    return pipeline_id, created.pipeline_version_id


def submit(
    pipeline: Any, arguments: dict[str, Any], settings: Settings, *, client: Any = None, run_name: str | None = None
) -> Any:
    """Compile, upload (or reuse) and run ``pipeline`` on the KFP API server; return a RunHandle.

    The handle's ``state`` is the run's state at creation; call ``.wait()`` to follow it.
    """
    client = client or kfp_client(settings)
    name = pipeline.pipeline_spec.pipeline_info.name
    path, digest = _package(pipeline, settings)
    pipeline_id, version_id = _ensure_pipeline_version(client, settings, name, path, digest)
    experiment = _api_call("creating the experiment", settings, lambda: client.create_experiment(EXPERIMENT))
    display = run_name or f"{name} {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M:%S}"
    run = _api_call(
        "creating the run",
        settings,
        lambda: client.run_pipeline(
            experiment.experiment_id, display, params=arguments, pipeline_id=pipeline_id, version_id=version_id
        ),
    )
    url = f"{settings.kfp_ui_url.rstrip('/')}/#/runs/details/{run.run_id}"
    handle = RunHandle(
        backend="cluster",
        pipeline=name,
        state=str(run.state or "PENDING"),
        outputs={},
        run_id=run.run_id,
        run_name=display,
        url=url,
        seconds=0.0,
    )
    handle.follow = lambda timeout, progress: _follow(client, settings, handle, arguments, timeout, progress)
    return handle


def run_component(component: Callable[..., Any], arguments: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """``component`` as a one-task pipeline (with the Secret's token and its namespace) on the KFP API server.

    Its outputs are read back from the registry, so this fits components that register.
    """
    from kfp import dsl

    from mrhelpers.authoring.pipelines import with_token  # loads kfp (heavy): only when a component runs here

    @dsl.pipeline(name=f"{component.component_spec.name}-check")
    def one_task():  # no annotation: KFP would read the string "None"
        with_token(component(**arguments))

    outputs = dict(submit(one_task, {}, settings).wait().outputs)
    if "model" in outputs:
        outputs["output_model"] = outputs.pop("model")
    return outputs


def _task_summary(run: Any) -> tuple[int, int, list[str]]:
    tasks = list(getattr(getattr(run, "run_details", None), "task_details", None) or [])
    done = sum(1 for t in tasks if str(t.state) in TERMINAL_STATES)
    failed = [f"{t.display_name}: {t.error.message if t.error else t.state}" for t in tasks if str(t.state) == "FAILED"]
    return done, len(tasks), failed


def _follow(
    client: Any, settings: Settings, handle: Any, arguments: dict[str, Any], timeout: float, show: bool
) -> None:
    """Poll the run until it ends or ``timeout`` passes; fill the handle."""

    start, last = time.monotonic(), None
    poll = float(os.environ.get("MRH_POLL_SECONDS", "5"))
    with Progress(f"Run {handle.run_name!r} on {settings.kfp_host}", quiet=not show) as progress:
        while True:
            run = _api_call("reading the run", settings, lambda: client.get_run(handle.run_id))
            state = str(run.state or "PENDING")
            done, total, failed = _task_summary(run)
            handle.state, handle.seconds = state, time.monotonic() - start
            show = progress.milestone if (state, done) != last else progress.update  # CI logs get the changes
            show(f"{state}, {done} of {total} tasks finished")
            last = (state, done)
            if state in TERMINAL_STATES:
                break
            if handle.seconds > timeout:
                progress.done(f"still {state}")
                raise RunFailed(
                    f"Run {handle.run_id} is still {state} after {timeout:.0f} s. Follow it at {handle.url}; "
                    "call .wait() again to keep waiting."
                )
            time.sleep(poll)
        progress.done(state)
    if state != "SUCCEEDED":
        detail = "; ".join(failed) or (run.error.message if getattr(run, "error", None) else "no error message")
        handle.error = detail
    else:
        handle.outputs = outputs_from_registry(settings, handle.run_id)
        handle.run_name = handle.outputs.get("run_name") or handle.run_name
    remember(settings, handle, arguments)


def outputs_from_registry(settings: Settings, run_id: str) -> dict[str, Any]:
    """What run ``run_id`` registered, read back from the Model Registry, in the shape of the local outputs.

    Keys: ``run_id``, ``run_name`` (as the tasks saw it) and, when the run registered exactly one
    version, ``model_id``, ``version_id``, ``version_name``, ``created`` and ``model`` (``uri`` and
    ``metadata``, the fields the component writes into its output Model). A run that registered
    several versions lists them under ``versions``.
    """

    registry = connect(settings)
    found = find_versions(registry, run_id=run_id)
    out: dict[str, Any] = {"run_id": run_id}
    if found.empty:
        return out
    out["run_name"] = found.iloc[-1]["source_name"]
    if len(found) > 1:
        out["versions"] = found[["model", "version", "version_id"]].to_dict("records")
        return out
    row = found.iloc[0]
    session = session_for(registry)
    model = session.find_model(row["model"])
    artifact = session.model_artifact(row["version_id"])
    uri = artifact.uri if artifact else None  # exact: the frame's ``uri`` column is masked for display
    out.update(
        model_id=model.id,
        version_id=row["version_id"],
        version_name=row["version"],
        created=True,
        model={
            "uri": uri,
            "metadata": {
                "model_name": row["model"],
                "version_name": row["version"],
                "registered_model_id": model.id,
                "model_version_id": row["version_id"],
                "model_artifact_id": artifact.id if artifact else None,
                "model_uri": uri,
                "registry_url": settings.component_registry_url,
            },
        },
    )
    return out
