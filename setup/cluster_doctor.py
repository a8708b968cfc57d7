"""The Kubeflow install's doctor: known failures as rules over Kubernetes objects (``kubectl get -o json``'s
dicts). ``make doctor`` (setup/doctor.py) prints them on the cluster backend."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from net import http_status

from mrhelpers.backends.cluster.clients import kube_client
from mrhelpers.backends.doctor import Finding
from mrhelpers.core.errors import MRHelpersError
from mrhelpers.core.settings import Settings

KFP_CORE = ("ml-pipeline", "metadata-grpc-deployment", "ml-pipeline-ui", "workflow-controller", "mysql")
_PULL = "(ImagePullBackOff|ErrImagePull)"

RULES: list[tuple[str, str, str, str, str]] = [
    # (symptom, regex its text must match, check, cause, fix); {namespace} and what the symptom gives filled in.
    # The first rule that matches a symptom makes its finding; a symptom no rule matches is no failure.
    ("waiting", r"^CrashLoopBackOff exit=139 ", "{subject} CrashLoopBackOff, exit code 139",
     "the container segfaults (SIGSEGV). ML Metadata's store server has no arm64 image, so on an arm64 host "
     "(Apple Silicon) it runs emulated; some host kernels crash it too",
     "on arm64, use an amd64 machine (or Docker's Rosetta emulation); else the pinned KFP release's "
     "env/platform-agnostic overlay, then `kubectl -n kubeflow rollout restart deploy/metadata-grpc-deployment`"),
    ("waiting", r"^CreateContainerConfigError ", "{subject} CreateContainerConfigError",
     "missing configuration: {detail}",
     "apply the pinned manifests that create it (Model Registry: overlays/db); `kubectl get configmap,secret -n <ns>`"),
    ("waiting", rf"^{_PULL} .*(no such host|name resolution|i/o timeout|dial tcp)", "{subject} {reason}", "{detail}",
     "the node cannot reach the registry (the host's DNS, VPN or proxy): restart Docker or the kind cluster"),
    ("waiting", rf"^{_PULL} .*(toomanyrequests|rate limit)", "{subject} {reason}", "{detail}",
     "the registry's pull rate limit: wait, `docker login`, or `kind load docker-image` it"),
    ("waiting", rf"^{_PULL} ", "{subject} {reason}", "{detail}",
     "check the image name and tag in the manifest, and that the node can reach the registry"),
    ("not-ready", "", "{subject} ({detail}) not Ready",
     "a KFP core component is not Ready: the UI shows 'Cannot find context' or 'Pipeline version creation failed'",
     "wait for it: `kubectl -n kubeflow wait --for=condition=Ready pod --all --timeout=600s`; "
     "`kubectl -n kubeflow describe pod` tells why it is not"),
    ("unschedulable", "", "{subject} cannot be scheduled: Insufficient {detail}",
     "the node has too little {detail} for the pods (kind's node gets what Docker allows)",
     "give Docker more memory and CPUs (Docker Desktop: Settings > Resources), close other workloads, or "
     "recreate the cluster; docs/cluster.md lists what the install needs"),
    ("no-registry", "", "no Model Registry pod in namespace {namespace}",
     "the Model Registry server is not deployed there",
     "`kubectl apply -k <model-registry manifests>/overlays/db -n {namespace}` at the pinned version"),
    ("pvc", "^no-default$", "PVC Pending: {subject}", "there is no default StorageClass",
     "kind ships 'standard' (local-path): recreate the cluster, or mark one default with "
     "`kubectl annotate storageclass <name> storageclass.kubernetes.io/is-default-class=true`"),
    ("pvc", "^no-provisioner$", "PVC Pending: {subject}", "the storage provisioner is not running",
     "`kubectl -n local-path-storage get pods`; restart it, or recreate the kind cluster"),
    ("log", "RBAC: access denied", "{subject}: RBAC: access denied",
     "Istio (an AuthorizationPolicy) refuses the pipeline pod's calls",
     "allow the pipeline's service account in the registry's AuthorizationPolicy, and send the token from the "
     "Secret (the packaged component does)"),
    ("ui", "", "Model Registry UI not reachable at {subject}", "no port-forward, or the UI is not deployed",
     "`setup/cluster.sh port-forward start` (it forwards the UI's proxy, `kubectl -n {namespace} port-forward "
     "deploy/model-registry-ui 8084:8000`); `kubectl -n {namespace} get deploy model-registry-ui`"),
]  # fmt: skip


def _name(obj: Mapping[str, Any], part: str = "metadata") -> str:
    meta = obj.get(part) or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}".lstrip("/")


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in pod["status"].get("conditions") or [])


def _statuses(pod: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    status = pod.get("status", {})
    return [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]


def _app(pod: Mapping[str, Any]) -> str:
    """Its ``app`` label, else its Deployment's name (KFP's metadata-grpc pods carry only ``component``)."""
    labels, name = pod["metadata"].get("labels") or {}, pod["metadata"].get("name", "")
    return labels.get("app") or labels.get("app.kubernetes.io/name") or name.rsplit("-", 2)[0]


def _failed(pod: Mapping[str, Any]) -> bool:
    exits = [((s.get("state") or {}).get("terminated") or {}).get("exitCode", 0) for s in _statuses(pod)]
    return pod.get("status", {}).get("phase") == "Failed" or any(exits)


def failed_pipeline_pods(pods: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """KFP task pods (label ``pipelines.kubeflow.org/v2_component``) that failed, newest first."""
    task = "pipelines.kubeflow.org/v2_component"
    failed = [p for p in pods if (p["metadata"].get("labels") or {}).get(task) == "true" and _failed(p)]
    return sorted(failed, key=lambda p: p["metadata"].get("creationTimestamp") or "", reverse=True)


def diagnose(
    pods: Iterable[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]] = (),
    pvcs: Iterable[Mapping[str, Any]] = (),
    storage_classes: Iterable[Mapping[str, Any]] = (),
    pipeline_logs: Mapping[str, str] | None = None,
    ui_unreachable: str = "",
    *,
    namespace: str = "kubeflow",
) -> list[Finding]:
    """The findings of :data:`RULES` over the objects given (``ui_unreachable``: the URL of a UI that is down)."""
    # (symptom, text the rule's regex reads, what fills its strings)
    symptoms = [*_symptoms(list(pods), list(events), pvcs, storage_classes, namespace)]
    symptoms += [("log", text, {"subject": pod}) for pod, text in (pipeline_logs or {}).items()]
    symptoms += [("ui", "", {"subject": ui_unreachable})] if ui_unreachable else []
    out = []
    for symptom, text, fill in symptoms:
        for kind, pattern, *finding in RULES:
            if kind == symptom and re.search(pattern, text, flags=re.I | re.S):
                out.append(Finding(*(part.format(namespace=namespace, **fill) for part in finding)))
                break
    return out


def _symptoms(pods: list, events: list, pvcs: Iterable, classes: Iterable, namespace: str) -> Iterator[tuple]:
    for pod in pods:
        for cs in _statuses(pod):
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason, message = waiting.get("reason", ""), waiting.get("message") or ""
            if re.match(_PULL, reason):  # the status says "Back-off pulling"; the pod's events say why
                said = [e.get("message") or "" for e in events if _name(e, "involvedObject") == _name(pod)]
                message = " ".join(filter(None, [message, *said])) or "the image cannot be pulled"
            elif reason == "CreateContainerConfigError":
                missing = r'(configmap|secret) "[^"]+" not found|couldn\'t find key \S+ in (ConfigMap|Secret) \S+'
                found = re.search(missing, message, flags=re.I)
                message = found.group(0) if found else message or "a ConfigMap or Secret it needs"
            last = ((cs.get("lastState") or {}).get("terminated") or {}).get("exitCode")
            fill = {"subject": _name(pod), "detail": message, "reason": reason}
            yield "waiting", f"{reason} exit={last} {message}", fill
        if _app(pod) in KFP_CORE and pod["status"].get("phase") != "Succeeded" and not _ready(pod):
            yield "not-ready", "", {"subject": _name(pod), "detail": _app(pod)}
    unschedulable: dict[str, str] = {}
    for e in events:
        short = ", ".join(sorted(set(re.findall(r"Insufficient (\w+)", e.get("message") or ""))))
        if e.get("reason") == "FailedScheduling" and short:
            unschedulable.setdefault(_name(e, "involvedObject"), short)
    yield from (("unschedulable", "", {"subject": k, "detail": v}) for k, v in unschedulable.items())
    if not any(_name(p).startswith(f"{namespace}/model-registry-deployment") for p in pods):
        yield "no-registry", "", {}
    pending = ", ".join(_name(p) for p in pvcs if p.get("status", {}).get("phase") == "Pending")
    default = "storageclass.kubernetes.io/is-default-class"
    if pending and not any((c["metadata"].get("annotations") or {}).get(default) == "true" for c in classes):
        yield "pvc", "no-default", {"subject": pending}
    elif pending and not any(p["metadata"].get("namespace") == "local-path-storage" and _ready(p) for p in pods):
        yield "pvc", "no-provisioner", {"subject": pending}  # with it running, a claim waits for its first pod


def cluster_doctor(settings: Settings) -> list[Finding]:
    """Read pods, events, PVCs, StorageClasses and failed pipeline pods' logs, then :func:`diagnose` them."""
    client = kube_client(settings, "diagnose", " Then `kubectl auth can-i list pods -A`.")
    core, as_dict = client.CoreV1Api(), client.ApiClient().sanitize_for_serialization
    lists = [core.list_pod_for_all_namespaces, core.list_event_for_all_namespaces]
    lists += [core.list_persistent_volume_claim_for_all_namespaces, client.StorageV1Api().list_storage_class]
    try:
        pods, events, pvcs, classes = ([as_dict(item) for item in call(timeout_seconds=20).items] for call in lists)
    except Exception as exc:  # cluster down, no permission
        status = getattr(exc, "status", None)
        why = f"HTTP {status} {exc.reason}" if status else f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        raise MRHelpersError(
            f"Cannot read the cluster with the current kubeconfig or ServiceAccount ({why}). Check "
            "`kubectl cluster-info` and `kubectl auth can-i list pods -A`: doctor reads pods, events, PVCs and "
            "StorageClasses in every namespace."
        ) from None
    logs = {}
    for pod in failed_pipeline_pods(pods)[:20]:  # the newest 20
        name, ns = pod["metadata"]["name"], pod["metadata"]["namespace"]
        with contextlib.suppress(Exception):  # a pod gone since the listing (or never run) has no log
            logs[name] = core.read_namespaced_pod_log(name, ns, container="main", tail_lines=200, _request_timeout=20)
    ui = settings.registry_ui_url if http_status(settings.registry_ui_url) is None else ""
    return diagnose(pods, events, pvcs, classes, logs, ui, namespace=settings.namespace)
