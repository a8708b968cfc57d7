"""The registering task's token wiring, from the compiled pipeline to a pod the real API server accepts.

KFP's driver turns the task's platform config (``secretAsEnv``, ``fieldPathAsEnv`` under
``platforms.kubernetes.deploymentSpec.executors``) into the pod's env. Here the same translation builds
the pod from the compiled YAML, the API server validates and stores it (there is no kubelet, so it never
runs), and the Secret it names is read back the way the kubelet would resolve ``secretKeyRef``."""

import base64

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from mrhelpers import Settings, ensure_secret
from mrhelpers.authoring.compiling import compile_pipeline
from mrhelpers.authoring.pipelines import model_registration_pipeline
from mrhelpers.core.settings import DEFAULT_SECRET_NAME, SECRET_TOKEN_KEY, TOKEN_ENV

TOKEN = "wiring-token-8c1d"


def pod_from_platform_config(name, container, executor):
    env = [client.V1EnvVar(name=k["envVar"], value_from=client.V1EnvVarSource(secret_key_ref=client.V1SecretKeySelector(
               name=s["secretName"], key=k["secretKey"], optional=s.get("optional", False))))
           for s in executor.get("secretAsEnv", []) for k in s["keyToEnv"]]  # fmt: skip
    env += [client.V1EnvVar(name=f["name"], value_from=client.V1EnvVarSource(
                field_ref=client.V1ObjectFieldSelector(field_path=f["fieldPath"])))
            for f in executor.get("fieldPathAsEnv", [])]  # fmt: skip
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"pipelines.kubeflow.org/v2_component": "true"}),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
            name="main", image=container["image"], command=container["command"], args=container["args"], env=env)]),
    )  # fmt: skip


@pytest.fixture
def compiled(tmp_path):
    spec, platform = yaml.safe_load_all(compile_pipeline(model_registration_pipeline, tmp_path / "p.yaml").read_text())
    executor = "exec-register-model"
    return spec["deploymentSpec"]["executors"][executor]["container"], \
        platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][executor]  # fmt: skip


def test_the_pod_the_driver_would_create_is_accepted_and_its_secret_resolves(compiled, core, namespace, tmp_path):
    container, executor = compiled
    ensure_secret(Settings(backend="cluster", namespace=namespace, state_dir=tmp_path), DEFAULT_SECRET_NAME,
                  {SECRET_TOKEN_KEY: TOKEN})  # fmt: skip
    created = core.create_namespaced_pod(namespace, pod_from_platform_config("register-model", container, executor))
    env = {e.name: e.value_from for e in created.spec.containers[0].env}
    ref = env[TOKEN_ENV].secret_key_ref
    assert (ref.name, ref.key, ref.optional) == (DEFAULT_SECRET_NAME, SECRET_TOKEN_KEY, False)
    assert env["POD_NAMESPACE"].field_ref.field_path == "metadata.namespace"
    assert created.spec.service_account_name == "default"  # admission filled it in: the account exists
    secret = core.read_namespaced_secret(ref.name, namespace)  # what the kubelet resolves at start
    assert base64.b64decode(secret.data[ref.key]).decode() == TOKEN
    assert TOKEN not in str(created.to_dict())  # the pod carries a reference, never the value


def test_the_api_server_really_validates_the_env_wiring(compiled, core, namespace):
    container, executor = compiled
    broken = {**executor, "fieldPathAsEnv": [{"name": "POD_NAMESPACE", "fieldPath": "metadata.nothing"}]}
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod_from_platform_config("broken-1", container, broken))
    assert refused.value.status == 422 and "metadata.nothing" in refused.value.body
    bad_key = {**executor, "secretAsEnv": [{**executor["secretAsEnv"][0],
                                            "keyToEnv": [{"secretKey": "no/slash", "envVar": TOKEN_ENV}]}]}  # fmt: skip
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(namespace, pod_from_platform_config("broken-2", container, bad_key))
    assert refused.value.status == 422 and "secretKeyRef.key" in refused.value.body
