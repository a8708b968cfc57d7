"""The cluster's ``doctor``: say what is wrong, why, and how to fix it.

The cluster rules work on Kubernetes objects as plain dicts (the JSON ``kubectl get -o json``
prints), so each rule is tested on objects built in the test; :func:`doctor` reads the live
objects (pods, events, PVCs, StorageClasses, failed pipeline pods' logs) with the Kubernetes
client and feeds them to :func:`diagnose`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from mrhelpers.backends.cluster.cluster import kube_client
from mrhelpers.backends.doctor import Finding
from mrhelpers.backends.net import http_status
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.settings import Settings

_MISSING_CONFIG = r'(configmap|secret) "[^"]+" not found|couldn\'t find key \S+ in (ConfigMap|Secret) \S+'
KFP_CORE = ("ml-pipeline", "metadata-grpc-deployment", "ml-pipeline-ui", "workflow-controller", "mysql")


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata", {})
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status", {})
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", []) or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _app(pod: Mapping[str, Any]) -> str:
    """The component a pod belongs to: its ``app`` label, else its Deployment's name (the pod name
    without the ReplicaSet and pod suffixes; KFP's metadata-grpc pods carry only ``component``)."""
    labels = pod.get("metadata", {}).get("labels", {}) or {}
    name = pod.get("metadata", {}).get("name", "")
    deployment = name.rsplit("-", 2)[0] if name.count("-") >= 2 else name
    return labels.get("app") or labels.get("app.kubernetes.io/name") or deployment


def _events_of(events: Iterable[Mapping[str, Any]], obj: Mapping[str, Any]) -> str:
    """The messages of the events about ``obj`` (same kind of name and namespace), newest last."""
    meta = obj.get("metadata", {})
    return " ".join(
        e.get("message") or ""
        for e in events
        if (e.get("involvedObject") or {}).get("name") == meta.get("name")
        and (e.get("involvedObject") or {}).get("namespace") == meta.get("namespace")
    )


def check_pods(pods: Iterable[Mapping[str, Any]], events: Iterable[Mapping[str, Any]] = ()) -> list[Finding]:
    """Crash loops with exit 139, missing config, image pulls, KFP core pods not Ready.

    A pod's events add what its status leaves out: ``Back-off pulling image`` says nothing of
    why; the event before it (``no such host``, ``toomanyrequests``) does.
    """
    out = []
    events = list(events)
    for pod in pods:
        for cs in _statuses(pod):
            waiting = (cs.get("state", {}) or {}).get("waiting", {}) or {}
            reason, message = waiting.get("reason", ""), waiting.get("message", "") or ""
            if reason in ("ImagePullBackOff", "ErrImagePull"):
                message = " ".join(filter(None, [message, _events_of(events, pod)]))
            last = ((cs.get("lastState", {}) or {}).get("terminated", {}) or {}).get("exitCode")
            if reason == "CrashLoopBackOff" and last == 139:
                out.append(
                    Finding(
                        f"{_name(pod)} CrashLoopBackOff, exit code 139",
                        "the container segfaults (SIGSEGV). ML Metadata's store server has no arm64 image, so "
                        "on an arm64 host (Apple Silicon) it runs emulated; some host kernels crash it too",
                        "on arm64, run the cluster on an amd64 machine (or Docker's Rosetta emulation); else use "
                        "the pinned KFP release's env/platform-agnostic overlay, then "
                        "`kubectl -n kubeflow rollout restart deploy/metadata-grpc-deployment`",
                    )
                )
            elif reason == "CreateContainerConfigError":
                missing = re.search(_MISSING_CONFIG, message, flags=re.I)
                what = missing.group(0) if missing else message or "a ConfigMap or Secret it needs"
                out.append(
                    Finding(
                        f"{_name(pod)} CreateContainerConfigError",
                        f"missing configuration: {what}",
                        "apply the manifests of the pinned version that create it (Model Registry: overlays/db), "
                        "or create it: `kubectl -n <namespace> get configmap,secret`",
                    )
                )
            elif reason in ("ImagePullBackOff", "ErrImagePull"):
                if re.search(r"no such host|name resolution|i/o timeout|dial tcp", message, flags=re.I):
                    hint = (
                        "the node cannot resolve or reach the registry (DNS, VPN or proxy on the host): "
                        "restart Docker, recreate the kind cluster"
                    )
                elif re.search(r"toomanyrequests|rate limit", message, flags=re.I):
                    hint = "the registry's pull rate limit: wait, `docker login`, or `kind load docker-image` it"
                else:
                    hint = "check the image name and tag in the manifest, and that the node can reach the registry"
                out.append(Finding(f"{_name(pod)} {reason}", message or "the image cannot be pulled", hint))
        if _app(pod) in KFP_CORE and pod.get("status", {}).get("phase") != "Succeeded" and not _ready(pod):
            out.append(
                Finding(
                    f"{_name(pod)} ({_app(pod)}) not Ready",
                    "a KFP core component is not Ready: the UI shows 'Cannot find context' "
                    "or 'Pipeline version creation failed'",
                    "wait for it: `kubectl -n kubeflow wait --for=condition=Ready pod --all --timeout=600s`; "
                    "`kubectl -n kubeflow describe pod` tells why it is not",
                )
            )
    return out


def check_scheduling(events: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """Pods the scheduler cannot place: too little memory or CPU in the kind node (Docker's limits)."""
    out, seen = [], set()
    for e in events:
        message = e.get("message") or ""
        obj = e.get("involvedObject") or {}
        where = f"{obj.get('namespace', '')}/{obj.get('name', '')}".lstrip("/")
        if e.get("reason") == "FailedScheduling" and "Insufficient" in message and where not in seen:
            seen.add(where)
            short = ", ".join(sorted(set(re.findall(r"Insufficient (\w+)", message))))
            out.append(
                Finding(
                    f"{where} cannot be scheduled: Insufficient {short}",
                    f"the node has too little {short} for the pods (kind's node gets what Docker allows)",
                    "give Docker more memory and CPUs (Docker Desktop: Settings > Resources), close other "
                    "workloads, or recreate the cluster; docs/cluster.md lists what the install needs",
                )
            )
    return out


def check_model_registry(pods: Iterable[Mapping[str, Any]], namespace: str) -> list[Finding]:
    """The Model Registry server pod must exist in ``namespace``."""
    found = [
        p
        for p in pods
        if p.get("metadata", {}).get("namespace") == namespace
        and p.get("metadata", {}).get("name", "").startswith("model-registry-deployment")
    ]
    if found:
        return []
    return [
        Finding(
            f"no Model Registry pod in namespace {namespace}",
            "the Model Registry server is not deployed there",
            f"`kubectl apply -k <model-registry manifests>/overlays/db -n {namespace}` at the pinned version",
        )
    ]


def check_storage(
    pvcs: Iterable[Mapping[str, Any]],
    classes: Iterable[Mapping[str, Any]],
    provisioner_pods: Iterable[Mapping[str, Any]] = (),
) -> list[Finding]:
    """PVCs stuck Pending: no default StorageClass, or its provisioner is not running."""
    pending = [p for p in pvcs if p.get("status", {}).get("phase") == "Pending"]
    if not pending:
        return []
    default = [
        c
        for c in classes
        if (c.get("metadata", {}).get("annotations", {}) or {}).get("storageclass.kubernetes.io/is-default-class")
        == "true"
    ]
    names = ", ".join(_name(p) for p in pending)
    if not default:
        return [
            Finding(
                f"PVC Pending: {names}",
                "there is no default StorageClass",
                "kind ships 'standard' (local-path): recreate the cluster, or mark one default with "
                "`kubectl annotate storageclass <name> "
                "storageclass.kubernetes.io/is-default-class=true`",
            )
        ]
    running = [p for p in provisioner_pods if p.get("status", {}).get("phase") == "Running" and _ready(p)]
    if not running:
        return [
            Finding(
                f"PVC Pending: {names}",
                "the storage provisioner is not running",
                "`kubectl -n local-path-storage get pods`; restart it, or recreate the kind cluster",
            )
        ]
    return [
        Finding(
            f"PVC Pending: {names}",
            "the provisioner runs but has not bound the claim yet",
            "`kubectl describe pvc` shows its events",
        )
    ]


MAX_LOGS = 20
"""At most this many failed pipeline pods get their logs read (the newest first)."""


def failed_pipeline_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """KFP task pods (label ``pipelines.kubeflow.org/v2_component``) that failed, newest first."""
    failed = [
        p
        for p in pods
        if (p.get("metadata", {}).get("labels") or {}).get("pipelines.kubeflow.org/v2_component") == "true"
        and (p.get("status", {}).get("phase") == "Failed" or any(
            (s.get("state", {}).get("terminated") or {}).get("exitCode", 0) != 0 for s in _statuses(p)
        ))
    ]  # fmt: skip
    return sorted(failed, key=lambda p: p.get("metadata", {}).get("creationTimestamp") or "", reverse=True)


def check_pipeline_logs(logs: Mapping[str, str]) -> list[Finding]:
    """Istio refusing a pipeline pod's calls to the registry."""
    return [
        Finding(
            f"{pod}: RBAC: access denied",
            "Istio (an AuthorizationPolicy) refuses the pipeline pod's calls",
            "allow the pipeline's service account in the registry's AuthorizationPolicy, and send the token "
            "from the Secret (the packaged component does)",
        )
        for pod, text in logs.items()
        if "RBAC: access denied" in text
    ]


def diagnose(
    pods: Iterable[Mapping[str, Any]],
    *,
    namespace: str = "kubeflow",
    pvcs: Iterable[Mapping[str, Any]] = (),
    storage_classes: Iterable[Mapping[str, Any]] = (),
    provisioner_pods: Iterable[Mapping[str, Any]] = (),
    ui_reachable: bool | None = None,
    ui_url: str = "",
    pipeline_logs: Mapping[str, str] | None = None,
    events: Iterable[Mapping[str, Any]] = (),
) -> list[Finding]:
    """Every cluster rule over the objects given; an empty list means nothing found."""
    pods, events = list(pods), list(events)
    out = [
        *check_pods(pods, events),
        *check_scheduling(events),
        *check_model_registry(pods, namespace),
        *check_storage(pvcs, storage_classes, provisioner_pods),
        *check_pipeline_logs(pipeline_logs or {}),
    ]
    if ui_reachable is False:
        out.append(
            Finding(
                f"Model Registry UI not reachable at {ui_url}",
                "no port-forward, or the UI is not deployed",
                "`setup/cluster.sh port-forward start` (it forwards the UI's proxy, "
                f"`kubectl -n {namespace} port-forward deploy/model-registry-ui 8084:8000`); "
                f"`kubectl -n {namespace} get deploy model-registry-ui`",
            )
        )
    return out


def cluster_doctor(settings: Settings) -> list[Finding]:
    """What is wrong on the cluster (empty: all good).

    Reads pods, events, PVCs and StorageClasses with the Kubernetes client (your kubeconfig).

    Raises:
        MRHelpersError: No cluster is reachable with the current kubeconfig.
    """

    client = kube_client("diagnose", " Then `kubectl auth can-i list pods -A`.")
    try:
        core, storage = client.CoreV1Api(), client.StorageV1Api()
        as_dict = client.ApiClient().sanitize_for_serialization
        pods = [as_dict(p) for p in core.list_pod_for_all_namespaces(timeout_seconds=20).items]
        pvcs = [as_dict(p) for p in core.list_persistent_volume_claim_for_all_namespaces(timeout_seconds=20).items]
        classes = [as_dict(c) for c in storage.list_storage_class(timeout_seconds=20).items]
        events = [as_dict(e) for e in core.list_event_for_all_namespaces(timeout_seconds=20).items]
    except Exception as exc:  # cluster down, no permission
        status = getattr(exc, "status", None)
        why = f"HTTP {status} {exc.reason}" if status else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        raise MRHelpersError(
            f"Cannot read the cluster with the current kubeconfig or ServiceAccount ({why}). "
            "Check `kubectl cluster-info` and `kubectl auth can-i list pods -A`: doctor reads pods, events, "
            "PVCs and StorageClasses in every namespace."
        ) from None
    provisioners = [p for p in pods if p.get("metadata", {}).get("namespace") == "local-path-storage"]
    logs = {}
    for pod in failed_pipeline_pods(pods)[:MAX_LOGS]:
        meta = pod["metadata"]
        try:
            logs[meta["name"]] = core.read_namespaced_pod_log(
                meta["name"], meta["namespace"], container="main", tail_lines=200, _request_timeout=20
            )
        except Exception:  # noqa: S112 - a pod gone since the listing has no log to check
            continue
    reachable = http_status(settings.registry_ui_url) is not None
    return diagnose(
        pods,
        namespace=settings.namespace,
        pvcs=pvcs,
        storage_classes=classes,
        provisioner_pods=provisioners,
        ui_reachable=reachable,
        ui_url=settings.registry_ui_url,
        pipeline_logs=logs,
        events=events,
    )
