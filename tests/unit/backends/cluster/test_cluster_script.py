"""setup/cluster.sh against stub kind/kubectl/kustomize/docker on PATH (no Docker engine runs here).

Checked: the command sequence and its pins, dry-run (prints, runs nothing), idempotence, retries,
timeouts, preflight messages, and the port-forwards (started, checked and stopped by pid).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from mrhelpers.core.settings import versions
from tests.unit.backends.cluster import cluster_stubs

ROOT = Path(__file__).resolve().parents[4]
SCRIPT = ROOT / "setup" / "cluster.sh"
V = versions()
MUTATING = ("create", "delete", "apply", "build", "load", "patch", "port-forward", "use-context")


class Cluster:
    """One sandbox: stub binaries, their log and state, a fake /proc, the script's state folder."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        cluster_stubs.install(self.bin)
        shutil.copy(self.bin / "kind", self.bin / "git")  # present (preflight asks); never run by these tests
        self.log = tmp / "calls.jsonl"
        self.scenario = tmp / "scenario.json"
        self.proc = tmp / "proc"
        (self.proc / "sys/fs/inotify").mkdir(parents=True)
        self.set_proc(instances=8192, watches=2_000_000, mem_gib=32)
        self.ports = {name: free_port() for name in ("KFP_UI", "KFP_API", "REGISTRY", "REGISTRY_UI")}
        self.env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(tmp),
            "STUB_LOG": str(self.log),
            "STUB_STATE": str(tmp / "state.json"),
            "STUB_SCENARIO": str(self.scenario),
            "MRH_PROC_DIR": str(self.proc),
            "MRH_CLUSTER_STATE": str(tmp / "cluster-state"),
            "MRH_DOCKER_ROOT": str(tmp),
            "MRH_RETRY_DELAY": "0",
            **{f"MRH_{k}_PORT": str(v) for k, v in self.ports.items()},
        }

    def set_proc(self, *, instances: int, watches: int, mem_gib: int) -> None:
        (self.proc / "sys/fs/inotify/max_user_instances").write_text(f"{instances}\n")
        (self.proc / "sys/fs/inotify/max_user_watches").write_text(f"{watches}\n")
        (self.proc / "meminfo").write_text(f"MemTotal: 99999999 kB\nMemAvailable: {mem_gib * 1048576} kB\n")

    def given(self, **scenario) -> "Cluster":
        self.scenario.write_text(json.dumps(scenario))
        return self

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        self.log.write_text("")
        return subprocess.run(["bash", str(SCRIPT), *args], env={**self.env, **env}, capture_output=True, text=True,
                              timeout=120)  # fmt: skip

    def calls(self) -> list[list[str]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def changes(self) -> list[str]:
        """The calls that would change something, as 'tool word word ...' strings."""
        out = []
        for call in self.calls():
            words = [w for w in call[1:] if not w.startswith("-")]
            if any(w in MUTATING for w in words) or call[:3] == ["kind", "create", "cluster"]:
                out.append(" ".join(call))
        return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    subprocess.run(["bash", str(SCRIPT), "port-forward", "stop"], env=c.env, capture_output=True, timeout=60)


def index_of(changes: list[str], needle: str) -> int:
    return next(i for i, c in enumerate(changes) if needle in c)


def test_up_runs_the_pinned_sequence_in_order(cluster):
    result = cluster.given().run("up")
    assert result.returncode == 0, result.stderr
    changes = cluster.changes()
    kfp, kfp_ref = "github.com/kubeflow/pipelines/manifests/kustomize", V["KFP_BACKEND_VERSION"]
    mr, mr_ref = "https://github.com/kubeflow/hub/manifests/kustomize", V["MODEL_REGISTRY_MANIFESTS_REF"]
    order = [
        f"kind create cluster --name mrhelpers --image {V['KIND_NODE_IMAGE']} --config {ROOT}/setup/kind/cluster.yaml",
        "kubectl config use-context kind-mrhelpers",
        f"docker build -t {V['COMPONENT_IMAGE']} --build-arg SKLEARN_VERSION={V['SKLEARN_SERVING_VERSION']}",
        f"kind load docker-image {V['COMPONENT_IMAGE']} --name mrhelpers",
        f"apply -k {kfp}/cluster-scoped-resources?ref={kfp_ref}",
        f"apply -k {kfp}/env/platform-agnostic?ref={kfp_ref}",
        f"apply -n kubeflow -k {mr}/overlays/db?ref={mr_ref}",
        f"apply -k {mr}/options/ui/overlays/standalone?ref={mr_ref}",
        "patch service model-registry-ui-service --type=json",
    ]  # fmt: skip
    positions = [index_of(changes, step) for step in order]
    assert positions == sorted(positions), changes
    waits = [c for c in cluster.calls() if "wait" in c]
    assert any("crd/applications.app.k8s.io" in w for w in waits)
    assert "kubeflow: 3 of 3 Deployments available" in result.stdout
    assert "setup/cluster.sh port-forward start" in result.stdout  # the next step is named
    assert not any("kserve" in c or "cert-manager" in c for c in changes)


def test_up_again_keeps_the_cluster(cluster):
    assert cluster.given().run("up").returncode == 0
    again = cluster.run("up", "--rebuild")  # every step again (without --rebuild, what answers is reused)
    assert again.returncode == 0, again.stderr
    assert "kind cluster 'mrhelpers' exists; keeping it." in again.stdout
    assert not any(c.startswith("kind create") for c in cluster.changes())


def test_dry_run_prints_every_command_and_runs_none(cluster):
    result = cluster.given().run("--dry-run", "up", "--with-kserve")
    assert result.returncode == 0, result.stderr
    assert cluster.changes() == []
    printed = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert printed[0].startswith(f"kind create cluster --name mrhelpers --image {V['KIND_NODE_IMAGE']}")
    joined = "\n".join(printed)
    for needle in ("docker build", "kind load docker-image", "cluster-scoped-resources", "env/platform-agnostic",
                   "overlays/db", "options/ui/overlays/standalone", "cert-manager.yaml", "kserve.yaml",
                   "kserve-cluster-resources.yaml", "setup/kserve/inferenceservice-config.yaml"):  # fmt: skip
        assert needle in joined, needle
    assert f"releases/download/{V['KSERVE_VERSION']}/kserve.yaml" in joined
    assert not (cluster.tmp / "cluster-state" / "mode").exists()


def test_dry_run_works_without_any_tool_installed(cluster):
    for tool in ("kind", "kubectl", "kustomize", "docker", "git"):
        (cluster.bin / tool).unlink()
    result = cluster.run("--dry-run", "up")
    assert result.returncode == 0, result.stderr
    assert "docker is not installed" in result.stderr and "dry run: continuing anyway" in result.stderr
    assert "+ kind create cluster" in result.stdout


def test_multi_user_dry_run_installs_kubeflow_and_the_registry_in_the_profile(cluster):
    shutil.copy(cluster.bin / "kind", cluster.bin / "jq")  # preflight wants jq for --multi-user
    result = cluster.given().run("--dry-run", "up", "--multi-user")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"git clone --depth 1 --branch {V['KUBEFLOW_MANIFESTS_VERSION']} {V['KUBEFLOW_MANIFESTS_REPO']}" in out
    assert "/example | kubectl apply --server-side --force-conflicts -f -" in out
    profile = V["PROFILE_NAMESPACE"]
    assert f"model-registry/upstream/overlays/db | kubectl apply -n {profile}" in out
    assert "options/ui/overlays/istio | kubectl apply -n kubeflow" in out
    assert "centraldashboard-config" in out
    assert "platform-agnostic" not in out  # the full install replaces standalone KFP
    assert cluster.changes() == []
    # The profile controller creates the profile's namespace later: wait for it before applying into it.
    assert out.index(f"waiting for namespace {profile} to exist") < out.index(f"kubectl apply -n {profile}")


def test_multi_user_with_kserve_keeps_the_distributions_kserve(cluster):
    """Issue 17 (4): the distribution ships KServe in kubeflow and cert-manager 1.19; no second KServe, no downgrade."""
    shutil.copy(cluster.bin / "kind", cluster.bin / "jq")
    result = cluster.given().run("--dry-run", "up", "--multi-user", "--with-kserve")
    assert result.returncode == 0, result.stderr
    assert "kserve.yaml" not in result.stdout and "cert-manager.yaml" not in result.stdout
    assert "the Kubeflow distribution installed its own" in result.stdout


def test_kserve_applies_take_back_their_fields(cluster):
    """Issue 17 (5): server-side applies with --force-conflicts, and the one field the project owns
    (inferenceservice-config's data.deploy) applied from a file as field manager mrhelpers, not patched."""
    result = cluster.given().run("up", "--with-kserve")
    assert result.returncode == 0, result.stderr
    changes = cluster.changes()
    for release in ("kserve.yaml", "kserve-cluster-resources.yaml"):
        (applied,) = [c for c in changes if c.endswith(f"/{V['KSERVE_VERSION']}/{release}")]
        assert "apply --server-side --force-conflicts -f" in applied, applied
    (config,) = [c for c in changes if "inferenceservice-config" in c]
    assert config == (
        "kubectl --context kind-mrhelpers apply --server-side --force-conflicts --field-manager=mrhelpers "
        f"-f {ROOT}/setup/kserve/inferenceservice-config.yaml"
    )
    assert not any(" patch configmap" in c for c in changes)
    assert (cluster.tmp / "cluster-state" / "kserve").read_text().strip() == V["KSERVE_VERSION"]
    assert index_of(changes, "kserve-cluster-resources.yaml") < index_of(changes, "inferenceservice-config")


def test_apply_is_retried_until_the_crds_are_served(cluster):
    result = cluster.given(apply_failures={"platform-agnostic": 2}).run("up")
    assert result.returncode == 0, result.stderr
    applies = [c for c in cluster.changes() if "platform-agnostic" in c]
    assert len(applies) == 3
    assert "attempt 1 of 5 failed; retrying" in result.stdout and "attempt 2 of 5 failed" in result.stdout


def test_apply_that_keeps_failing_stops_with_the_next_step(cluster):
    result = cluster.given(apply_failures={"platform-agnostic": 99}).run("up")
    assert result.returncode == 1
    assert len([c for c in cluster.changes() if "platform-agnostic" in c]) == 5
    assert "failed 5 times" in result.stderr and "`MRH_BACKEND=cluster make doctor`" in result.stderr
    assert "setup/cluster.sh doctor" not in result.stderr  # no such command (issue 17, 6)
    assert "re-running `setup/cluster.sh up` is safe" in result.stderr
    assert not any("model-registry" in c for c in cluster.changes())  # stopped there


def test_waits_show_progress_then_time_out_naming_doctor(cluster):
    result = cluster.given(deployments_ready_after=2).run("up")
    assert result.returncode == 0, result.stderr
    assert "kubeflow: 0 of 3 Deployments available after 0s" in result.stdout
    assert "kubeflow: 3 of 3 Deployments available" in result.stdout
    stuck = cluster.given(deployments_ready_after=10**6).run("up", "--rebuild", MRH_WAIT_TIMEOUT="0")
    assert stuck.returncode == 1
    assert "did not become Available within 0s" in stuck.stderr and "make doctor" in stuck.stderr


def test_preflight_names_each_problem_and_its_fix(cluster):
    cluster.set_proc(instances=128, watches=8192, mem_gib=3)
    (cluster.bin / "kustomize").unlink()
    (cluster.bin / "git").unlink()
    system = cluster.tmp / "system-without-git"  # the system's commands, minus git
    system.mkdir()
    for folder in (Path("/usr/bin"), Path("/bin")):
        for tool in folder.iterdir():
            if tool.name != "git" and not (system / tool.name).exists():
                (system / tool.name).symlink_to(tool)
    cluster.given(docker_running=False, kind_version="v0.20.0", disk_free_gib=5)
    result = cluster.run("up", PATH=f"{cluster.bin}:{system}")
    assert result.returncode == 1
    err = result.stderr
    assert "Preflight found 7 problem(s)" in err, err
    assert "git is not installed; kubectl needs it for remote kustomize bases" in err
    assert "Docker is installed but not running" in err and "systemctl start docker" in err
    assert f"kind is v0.20.0; this project needs {V['KIND_VERSION']} or later" in err
    assert f"kind.sigs.k8s.io/dl/{V['KIND_VERSION']}/kind-linux-amd64" in err
    assert f"kustomize is not installed. Install {V['KUSTOMIZE_VERSION']}" in err
    assert f"sudo sysctl fs.inotify.max_user_instances={V['INOTIFY_MAX_USER_INSTANCES']}" in err
    assert "only 3 GiB of memory is free" in err and "only 5 GiB of disk is free" in err
    assert cluster.changes() == []  # nothing was touched


def test_preflight_passes_on_a_good_host(cluster):
    result = cluster.given().run("preflight")
    assert result.returncode == 0, result.stderr
    assert "Preflight: ok" in result.stdout


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    return state != "Z"


def test_port_forwards_start_check_and_stop_by_pid(cluster):
    state = cluster.tmp / "cluster-state"
    started = cluster.given().run("port-forward", "start")
    assert started.returncode == 0, started.stdout + started.stderr
    pids = {
        n: int((state / f"port-forward-{n}.pid").read_text()) for n in ("kfp-ui", "kfp-api", "registry", "registry-ui")
    }
    assert all(alive(p) for p in pids.values())
    assert (
        f"registry: http://127.0.0.1:{cluster.ports['REGISTRY']} -> svc/model-registry-service:8080" in started.stdout
    )
    assert "registry-ui: " in started.stdout and "deploy/model-registry-ui:8000" in started.stdout

    again = cluster.run("port-forward", "start")
    assert again.stdout.count("already forwarded") == 4
    assert {n: int((state / f"port-forward-{n}.pid").read_text()) for n in pids} == pids

    status = cluster.run("port-forward", "status")
    assert status.returncode == 0 and status.stdout.count("answers") == 4

    os.kill(pids["kfp-api"], signal.SIGTERM)
    for _ in range(50):
        if not alive(pids["kfp-api"]):
            break
        time.sleep(0.1)
    broken = cluster.run("port-forward", "status")
    assert broken.returncode == 1 and "kfp-api: stopped" in broken.stdout

    stopped = cluster.run("port-forward", "stop")
    assert stopped.returncode == 0
    assert not any(alive(p) for n, p in pids.items())
    assert not list(state.glob("*.pid"))


def test_a_taken_port_is_named_and_a_stale_pid_file_is_ignored(cluster):
    state = cluster.tmp / "cluster-state"
    state.mkdir()
    (state / "port-forward-registry.pid").write_text(f"{os.getpid()}\n")  # reused pid: not a port-forward
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", cluster.ports["KFP_UI"]))
        taken.listen()
        result = cluster.given().run("port-forward", "start")
    assert result.returncode == 1
    assert f"kfp-ui: 127.0.0.1:{cluster.ports['KFP_UI']} is taken by another program" in result.stderr
    assert f"registry: http://127.0.0.1:{cluster.ports['REGISTRY']}" in result.stdout
    assert alive(os.getpid())  # our own pid, written into the stale file, was not killed


def test_a_failing_forward_shows_its_log(cluster):
    result = cluster.given(port_forward_fails=["svc/ml-pipeline"]).run("port-forward", "start")
    assert result.returncode == 1
    assert "kfp-api: the forward to svc/ml-pipeline did not open" in result.stderr
    assert 'services "svc/ml-pipeline" not found' in result.stderr


def test_down_stops_the_forwards_and_deletes_the_cluster(cluster):
    assert cluster.given().run("up").returncode == 0
    assert cluster.run("port-forward", "start").returncode == 0
    pid = int((cluster.tmp / "cluster-state" / "port-forward-registry.pid").read_text())
    down = cluster.run("down")
    assert down.returncode == 0, down.stderr
    assert "kind delete cluster --name mrhelpers" in cluster.changes()
    assert not alive(pid)  # down returns once the forwards are gone
    nothing = cluster.run("down")
    assert "No kind cluster named 'mrhelpers'; nothing to delete." in nothing.stdout


def test_unknown_commands_and_options_print_usage(cluster):
    for args in (["bogus"], ["up", "--bogus"], ["port-forward", "restart"]):
        result = cluster.run(*args)
        assert result.returncode == 1 and "usage: setup/cluster.sh" in result.stderr, args


def test_port_forward_status_follows_the_installed_mode(cluster):
    state = cluster.tmp / "cluster-state"
    standalone = cluster.given().run("port-forward", "status")
    assert standalone.returncode == 1 and standalone.stdout.count(": stopped") == 4
    assert [line.split(":")[0].strip() for line in standalone.stdout.splitlines()] == [
        "kfp-ui", "kfp-api", "registry", "registry-ui"]  # fmt: skip
    state.mkdir(exist_ok=True)
    (state / "mode").write_text("multi-user\n")  # what `up --multi-user` records
    multi = cluster.run("port-forward", "status")
    assert [line.split(":")[0].strip() for line in multi.stdout.splitlines()] == ["kubeflow", "registry"]
    dry = cluster.run("--dry-run", "port-forward", "start")
    assert "istio-system port-forward --address 127.0.0.1 svc/istio-ingressgateway" in dry.stdout
    assert f"-n {V['PROFILE_NAMESPACE']} port-forward" in dry.stdout and "ml-pipeline" not in dry.stdout


def test_up_reuses_what_it_built_instead_of_rebuilding(cluster):
    """Issue 17 (9): notebook 00 after `make cluster-up` (or CI's own `up` step) takes seconds, not the install."""
    assert cluster.given().run("up").returncode == 0  # what CI's "Stand the cluster up" step does; no forwards yet

    again = cluster.run("up")
    built = [" ".join(c) for c in cluster.calls()]
    assert not any(c.startswith(("docker build", "kind create")) or " apply " in c for c in built), built
    assert any("port-forward" in c for c in built)  # only the forwards were started
    assert "answers at every port-forward; reusing it" in again.stdout and again.stdout.count(" answers") == 5

    assert cluster.run("up").returncode == 0 and not any("port-forward" in " ".join(c) for c in cluster.calls())
    assert cluster.run("up", "--with-kserve").returncode == 0  # KServe was not built: every step runs
    assert any("kserve.yaml" in " ".join(c) for c in cluster.calls())
    assert "reusing it" in cluster.run("up", "--with-kserve").stdout and cluster.changes() == []
    rebuilt = cluster.run("up", "--rebuild")
    assert "reusing" not in rebuilt.stdout and any(c[:2] == ["docker", "build"] for c in cluster.calls())


def test_a_failed_up_is_not_reused(cluster):
    assert cluster.given(apply_failures={"platform-agnostic": 99}).run("up").returncode == 1
    assert not (cluster.tmp / "cluster-state" / "mode").exists()  # recorded only when every step succeeded
    assert cluster.given().run("up").returncode == 0 and any(c[:2] == ["docker", "build"] for c in cluster.calls())


def test_the_hosted_workflow_keeps_the_container_logs_of_a_failure():
    """Issue 17 (9): on failure the workflow exports every container's log with kind, into the uploaded folder."""
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "cluster-tutorial.yml").read_text())
    steps = workflow["jobs"]["kind"]["steps"]
    (on_failure,) = [s for s in steps if s.get("if") == "failure()"]
    assert "kind export logs build/cluster-state/kind-logs --name mrhelpers" in on_failure["run"]
    (upload,) = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert "build/cluster-state" in upload["with"]["path"] and upload["if"] == "always()"
