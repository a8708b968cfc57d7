"""submit with backend='cluster', at its boundary: the real kfp.Client against a KFP API stub.

What the registry says after a successful run is tested against the real registry server in
tests/integration/backends/cluster/test_cluster_run_outputs.py.
"""

import json
import re
import socket

import pytest

import mrhelpers as mh
from mrhelpers import MRHelpersError, RunFailed, Settings
from mrhelpers.authoring.pipelines import model_registration_pipeline
from mrhelpers.backends.cluster import clients
from tests.unit.backends.cluster.kfp_api_stub import KfpApi

ARGS = dict(model_name="m", version_name="v1", model_uri="s3://b/k", author="me", registry_url="http://r:8080")


def settings(tmp_path, url, **more):
    return Settings(backend="cluster", namespace="kubeflow", kfp_host=url, kfp_ui_url="http://127.0.0.1:8080",
                    state_dir=tmp_path, poll_seconds=0.01, **more)  # fmt: skip


def test_uploads_once_then_reuses_the_same_content(tmp_path):
    with KfpApi(states=["FAILED"]) as api:
        s = settings(tmp_path, api.url)
        first = mh.submit(model_registration_pipeline, ARGS, s)
        second = mh.submit(model_registration_pipeline, ARGS, s)
    assert len(api.pipelines) == 1 and len(api.experiments) == 1
    pid = next(iter(api.pipelines))
    hashed = [v for v in api.versions[pid] if re.fullmatch(r"model-registration-[0-9a-f]{12}", v["display_name"])]
    assert len(hashed) == 1, api.versions[pid]  # same YAML: the version was reused
    assert len(api.uploads) == 2  # the pipeline, then its hashed version; nothing on the second submit
    runs = list(api.runs.values())
    used = [r["pipeline_version_reference"]["pipeline_version_id"] for r in runs]
    assert used == [hashed[0]["pipeline_version_id"]] * 2
    assert runs[0]["runtime_config"]["parameters"]["model_name"] == "m"
    assert ("GET", "/apis/v2beta1/healthz") in api.calls  # single-user or multi-user, asked once per client
    assert first.run_id != second.run_id and first.backend == "cluster"
    assert first.url == f"http://127.0.0.1:8080/#/runs/details/{first.run_id}"
    assert (tmp_path / "packages" / "model-registration.yaml").is_file()


def test_changed_pipeline_gets_a_new_version(tmp_path):
    from kfp import dsl

    with KfpApi(states=["FAILED"]) as api:
        s = settings(tmp_path, api.url)
        mh.submit(model_registration_pipeline, ARGS, s)

        @dsl.pipeline(name="model-registration")
        def changed(model_name: str, version_name: str, model_uri: str, author: str, registry_url: str):
            model_registration_pipeline(model_name=model_name, version_name=version_name, model_uri=model_uri,
                                        author=author, registry_url=registry_url)  # fmt: skip

        mh.submit(changed, ARGS, s)
    pid = next(iter(api.pipelines))
    assert (
        len([v for v in api.versions[pid] if re.fullmatch(r"model-registration-[0-9a-f]{12}", v["display_name"])]) == 2
    )


def test_wait_follows_the_run_and_raises_with_the_failed_task(tmp_path, capsys):
    with KfpApi(states=["PENDING", "RUNNING", "RUNNING", "FAILED"], task_error="VersionConflict: v1 owned") as api:
        run = mh.submit(model_registration_pipeline, ARGS, settings(tmp_path, api.url))
        assert run.state == "PENDING"
        with pytest.raises(
            RunFailed, match=r"ended FAILED: register-model: VersionConflict: v1 owned\. The run in the KFP UI"
        ):
            run.wait()
        assert api.polls[run.run_id] == 4  # polled until the terminal state, then stopped
    assert run.state == "FAILED"
    history = mh.runs.run_history(settings(tmp_path, api.url))
    assert history[-1]["run_id"] == run.run_id and history[-1]["state"] == "FAILED"
    assert "Run 'model-registration" in capsys.readouterr().out


def test_wait_times_out_with_the_url_and_can_wait_again(tmp_path):
    with KfpApi(states=["RUNNING"] * 10_000) as api:
        run = mh.submit(model_registration_pipeline, ARGS, settings(tmp_path, api.url))
        with pytest.raises(RunFailed, match=r"still RUNNING after 0 s\. Follow it at http://127\.0\.0\.1:8080/#/runs"):
            run.wait(timeout=0.05, progress=False)
        assert run.state == "RUNNING"
        polls = api.polls[run.run_id]
        with pytest.raises(RunFailed):
            run.wait(timeout=0.05, progress=False)
        assert api.polls[run.run_id] > polls


def test_unreachable_api_names_the_port_forward(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(MRHelpersError, match=r"does not answer .*setup/cluster.sh port-forward start"):
        mh.submit(model_registration_pipeline, ARGS, settings(tmp_path, f"http://127.0.0.1:{port}"))


def test_a_server_that_is_not_kfp_gets_a_hint(tmp_path, monkeypatch):
    import kfp.client.client

    monkeypatch.setattr(kfp.client.client.time, "sleep", lambda s: None)  # its 5 healthz tries, 5 s apart
    with KfpApi() as api:
        api.get = lambda path, query: (404, {"message": "page not found"})
        with pytest.raises(MRHelpersError, match=r"answers, but not as a KFP API server .*port 8888"):
            mh.submit(model_registration_pipeline, ARGS, settings(tmp_path, api.url))


def test_other_refusals_name_the_status_and_a_hint(tmp_path):
    with KfpApi() as api:
        real_get = api.get
        api.get = lambda path, query: real_get(path, query) if path.endswith("healthz") else (403, {"message": "no"})
        with pytest.raises(MRHelpersError, match=r"KFP refused looking up the pipeline \(HTTP 403.*RBAC"):
            mh.submit(model_registration_pipeline, ARGS, settings(tmp_path, api.url))


def test_run_component_on_cluster_wraps_one_task_with_the_secret(tmp_path):
    from kfp import dsl

    from mrhelpers.authoring.components import register_model

    args = dict(ARGS, run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER, run_name=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
    with KfpApi(states=["FAILED"]) as api, pytest.raises(RunFailed):
        mh.runs.run_component(register_model, args, settings(tmp_path, api.url))
    assert [p["display_name"] for p in api.pipelines.values()] == ["register-model-check"]
    spec = (tmp_path / "packages" / "register-model-check.yaml").read_text()
    assert "secretAsEnv" in spec and "model-registry-auth" in spec and "metadata.namespace" in spec
    assert "{{$.pipeline_job_uuid}}" in spec
    run = next(iter(api.runs.values()))
    assert json.dumps(run).count("runtime_config") == 1


def test_in_a_pod_the_client_sends_the_pods_kfp_token(tmp_path, monkeypatch):
    """Inside a Kubeflow Notebook: the projected KFP token (KF_PIPELINES_SA_TOKEN_PATH) goes with every call,
    re-read from its file; an explicit kfp_token (MRH_KFP_TOKEN) wins; outside a pod neither is sent."""
    account, kfp_token = tmp_path / "serviceaccount", tmp_path / "kfp-token"
    account.mkdir()
    (account / "token").write_text("k8s-api-token")
    kfp_token.write_text("pod-kfp-token-1")
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(kfp_token))
    with KfpApi() as api:
        in_pod = settings(tmp_path, api.url, serviceaccount_dir=account)
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        clients.kfp_client(in_pod).get_pipeline_id("p")
        assert set(api.authorization) == {None}
        api.authorization.clear()
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
        client = clients.kfp_client(in_pod)
        client.get_pipeline_id("p")
        kfp_token.write_text("pod-kfp-token-2")  # kubelet rotates the projected token
        client.get_pipeline_id("p")
        assert api.authorization[0] == "Bearer pod-kfp-token-1" and api.authorization[-1] == "Bearer pod-kfp-token-2"
        api.authorization.clear()
        monkeypatch.setenv("MRH_KFP_TOKEN", "explicit-token")
        from_env = Settings.from_env(
            backend="cluster", kfp_host=api.url, state_dir=tmp_path, serviceaccount_dir=account
        )
        clients.kfp_client(from_env).get_pipeline_id("p")
        assert set(api.authorization) == {"Bearer explicit-token"} and "explicit-token" not in repr(from_env)
        api.authorization.clear()
        kfp_token.unlink()  # a Notebook created without "Allow access to Kubeflow Pipelines"
        clients.kfp_client(in_pod).get_pipeline_id("p")
        assert set(api.authorization) == {None}


def test_in_a_pod_without_a_host_the_client_goes_to_the_in_cluster_service(tmp_path, monkeypatch):
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "token").write_text("k8s-api-token")
    monkeypatch.setenv("MRH_SERVICEACCOUNT_DIR", str(account))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.delenv("MRH_KFP_HOST", raising=False)
    s = Settings.from_env(backend="cluster", state_dir=tmp_path)
    assert s.kfp_host == ""
    seen = {}
    monkeypatch.setattr(clients, "kfp_call", lambda what, settings, *a, **k: seen.setdefault("host", settings.kfp_host))
    clients.kfp_client(s)
    assert seen["host"] == clients.IN_CLUSTER_KFP_HOST == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
