"""The token-checking proxy (setup/token_proxy.py) in front of the local registry, as on a secured cluster."""

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import localstack  # setup/localstack.py
import pytest
from net import http_status

from mrhelpers import (
    AuthError,
    InvalidInput,
    Secret,
    Settings,
    StackError,
    connect,
    doctor,
    ensure_secret,
    models_frame,
    register_version,
    versions_frame,
)
from tests.conftest import ROOT, stack_settings
from tests.unit.backends.cluster.kfp_api_stub import KfpApi

api_path = localstack.api_path

TOKEN = "proxy-test-token-9b1f2e7c4d"
FMT = dict(model_format_name="f", model_format_version="1")


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    base = stack_settings(tmp_path_factory.mktemp("secured"))
    ensure_secret(base, base.secret_name, {"token": TOKEN})
    try:
        status = localstack.up(base, auth=True, quiet=True)
        assert status.ok and [c.name for c in status.components] == ["mariadb", "registry", "proxy"]
        yield Settings.from_env(state_dir=base.state_dir, bin_dir=base.bin_dir)
    finally:
        localstack.down(base, quiet=True)


def test_requests_need_the_bearer_token(secured):
    url = f"{secured.registry_url}{api_path()}/registered_models"
    assert http_status(url) == 401
    assert http_status(url, "not-" + TOKEN) == 401
    assert http_status(url, TOKEN) == 200
    assert secured.token.reveal() == TOKEN  # Settings read it from the local Secret


def test_right_token_registers(secured):
    res = register_version(connect(secured), "secured-model", "v1", "s3://b/m", **FMT)
    assert res.created


@pytest.mark.parametrize("token", ["wrong-token", ""])
def test_wrong_or_missing_token_gets_auth_error_and_writes_nothing(secured, token):
    before = len(models_frame(connect(secured)))
    with pytest.raises(AuthError) as info:
        registry = connect(secured.replace(token=Secret(token)), retries=1)
        register_version(registry, "never-written", "v1", "s3://b/m", **FMT)
    message = str(info.value)
    assert "HTTP 401" in message and "secrets/model-registry-auth/token" in message and "MRH_TOKEN" in message
    assert TOKEN not in message and (not token or token not in message)
    registry = connect(secured)
    assert len(models_frame(registry)) == before and registry.get_registered_model("never-written") is None


def test_rotating_the_secret_rotates_what_the_proxy_accepts(secured):
    url = f"{secured.registry_url}{api_path()}/registered_models"
    pid = json.loads((secured.state_dir / "state.json").read_text())["proxy"]["pid"]
    try:
        ensure_secret(secured, secured.secret_name, {"token": "rotated-" + TOKEN})
        # At once (no wait, no signal): the next request sees the new file.
        assert http_status(url, TOKEN) == 401 and http_status(url, "rotated-" + TOKEN) == 200
        assert json.loads((secured.state_dir / "state.json").read_text())["proxy"]["pid"] == pid  # not restarted
        with pytest.raises(AuthError):
            connect(secured, retries=1)  # still the old token
        assert connect(Settings.from_env(state_dir=secured.state_dir), retries=1)
    finally:
        ensure_secret(secured, secured.secret_name, {"token": TOKEN})


def test_up_again_keeps_the_proxy_and_its_url(secured):
    again = localstack.up(secured, quiet=True)  # auth stays on without asking again
    assert again.ok and again.registry_url == secured.registry_url


# --------------------------------------------------------------------------- issue 12


def test_the_token_match_is_exact_including_letter_case(secured):
    url = f"{secured.registry_url}{api_path()}/registered_models"
    assert http_status(url, TOKEN.swapcase()) == 401 and http_status(url, TOKEN.upper()) == 401
    assert http_status(url, TOKEN + "x") == 401 and http_status(url, TOKEN[:-1]) == 401
    assert http_status(url, TOKEN.replace("-", ".")) == 401  # no character stands for another


def test_status_says_the_registry_port_itself_is_open(secured):
    status = localstack.status(secured)
    registry_url = next(c.address for c in status.components if c.name == "registry")
    assert status.open_port == registry_url and registry_url != secured.registry_url
    assert f"the registry server itself, {registry_url}, takes reads and writes" in str(status)
    assert "not a security boundary" in str(status)
    assert http_status(f"{registry_url}{api_path()}/registered_models") == 200  # what the line warns of


def test_metadata_up_to_the_limit_passes_the_proxy_and_past_it_writes_nothing(secured):
    from mrhelpers.core.registry import MAX_METADATA_BYTES, MAX_VALUE_BYTES

    registry = connect(secured)
    chunk = MAX_VALUE_BYTES - 1024
    metadata = {f"part{i}": chr(ord("a") + i) * chunk for i in range(MAX_METADATA_BYTES // MAX_VALUE_BYTES)}
    name = "big-through-proxy"
    register_version(registry, name, "v1", "s3://b/m", metadata=metadata, **FMT)
    stored = registry.get_model_version(name, "v1").custom_properties
    assert all(stored[k] == v for k, v in metadata.items())

    before = len(models_frame(registry))
    too_big = {**metadata, "more": "z" * 8192}
    with pytest.raises(InvalidInput, match="at most 16777216 bytes in all"):
        register_version(registry, "big-over-limit", "v1", "s3://b/m", metadata=too_big, **FMT)
    assert len(models_frame(registry)) == before and registry.get_registered_model("big-over-limit") is None


def test_the_proxy_refuses_bodies_past_its_own_limit(secured):
    import urllib.error
    import urllib.request

    body = b"x" * (33 * 1024 * 1024)  # the proxy takes at most 32 MiB: mrhelpers' 16 MiB stays below it
    request = urllib.request.Request(
        f"{secured.registry_url}{api_path()}/registered_models",
        data=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 413


def test_a_token_with_a_trailing_newline_is_refused_at_once(secured):
    path = secured.state_dir / "secrets" / secured.secret_name / "token"
    path.write_text(TOKEN + "\n")  # what `echo TOKEN > file` writes
    try:
        started = time.monotonic()
        with pytest.raises(StackError, match="surrounding spaces or a newline") as info:
            localstack.up(secured, quiet=True)
        assert time.monotonic() - started < 30 and TOKEN not in str(info.value)
        with pytest.raises(InvalidInput, match="newlines"):
            connect(Settings.from_env(state_dir=secured.state_dir), retries=1)
    finally:
        path.write_text(TOKEN)
    assert localstack.up(secured, quiet=True).ok


def _kill_proxy(settings):
    pid = json.loads((settings.state_dir / "state.json").read_text())["proxy"]["pid"]
    os.kill(pid, signal.SIGKILL)
    localstack._reap(pid)
    return pid


def test_a_killed_proxy_is_reported_and_up_starts_it_again_on_its_port(secured):
    url = f"{secured.registry_url}{api_path()}/registered_models"
    pid = _kill_proxy(secured)
    assert http_status(url, TOKEN) is None  # one process: nothing of it is left answering
    status = localstack.status(secured)
    proxy = next(c for c in status.components if c.name == "proxy")
    assert not status.ok and not proxy.running and proxy.pid == pid and "NOT fully up" in str(status)
    [finding] = secured.backend_impl().doctor(secured)
    assert "does not answer" in finding.check and "make up" in finding.fix
    assert localstack.up(secured, quiet=True).ok
    assert http_status(url, TOKEN) == 200 and http_status(url) == 401  # the same URL, the token still checked
    assert secured.backend_impl().doctor(secured) == []


def test_down_stops_the_proxy_by_its_pid_and_up_brings_it_back(secured):
    url = f"{secured.registry_url}{api_path()}/registered_models"
    assert localstack.down(secured, quiet=True) == ["proxy", "registry", "mariadb"]
    assert http_status(url, TOKEN) is None
    assert localstack.up(secured, quiet=True).ok and http_status(url, TOKEN) == 200


def test_many_clients_at_once_each_on_a_kept_alive_connection(secured):
    """8 clients with the token and 4 without, 20 requests each on one connection: every answer is the right one."""
    port = int(secured.registry_url.rsplit(":", 1)[1])
    path = f"{api_path()}/registered_models?pageSize=1"
    answers: dict[str, list[int]] = {"right": [], "wrong": []}
    lock = threading.Lock()

    def client(kind: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {TOKEN}"} if kind == "right" else {"Authorization": "Bearer nope"}
        got = []
        for _ in range(20):
            conn.request("GET", path, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            got.append(resp.status if kind == "wrong" or b'"items"' in body else -1)
        conn.close()
        with lock:
            answers[kind] += got

    threads = [threading.Thread(target=client, args=("right",)) for _ in range(8)]
    threads += [threading.Thread(target=client, args=("wrong",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert answers["right"] == [200] * 160 and answers["wrong"] == [401] * 80


def test_the_proxy_log_holds_no_token(secured):
    ensure_secret(secured, secured.secret_name, {"token": TOKEN})
    http_status(f"{secured.registry_url}{api_path()}/registered_models", TOKEN)
    http_status(f"{secured.registry_url}{api_path()}/registered_models", "wrong-" + TOKEN)
    log = (secured.state_dir / "logs" / "token-proxy.log").read_text()
    assert "/registered_models" in log and " 401 " in log and " 200 " in log
    assert TOKEN not in log and "Bearer" not in log


def test_without_a_token_the_clients_own_fallback_file_serves_every_helper(secured, tmp_path, monkeypatch):
    """A pod without MRH_TOKEN: the file named by KF_PIPELINES_SA_TOKEN_PATH, as the client reads it."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(token_file))
    registry = connect(secured.replace(token=Secret("")), retries=1)
    res = register_version(registry, "fallback-token", "v1", "s3://b/f", **FMT)  # the session sends it too
    assert res.created and list(versions_frame(registry, "fallback-token").version) == ["v1"]
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(InvalidInput, match="KF_PIPELINES_SA_TOKEN_PATH"):
        connect(secured.replace(token=Secret("")), retries=1)


def test_the_registry_stopped_behind_the_proxy_is_a_502_and_unavailable(secured):
    """The proxy answers 502 (not a dropped connection) when the server is gone; mrhelpers names the URL."""
    from mrhelpers import RegistryUnavailable

    url = f"{secured.registry_url}{api_path()}/registered_models"
    state = json.loads((secured.state_dir / "state.json").read_text())
    localstack._stop_pid(state["registry"]["pid"], "model-registry")
    try:
        assert http_status(url, TOKEN) == 502 and http_status(url) == 401  # the token is still checked first
        with pytest.raises(RegistryUnavailable, match=secured.registry_url):
            connect(secured, retries=1)
    finally:
        assert localstack.up(secured, quiet=True).ok
    assert http_status(url, TOKEN) == 200
    # readers still get the proxy's address, not the new server's (which would skip the token check)
    assert Settings.from_env(state_dir=secured.state_dir).registry_url == secured.registry_url


def test_a_chunked_request_body_is_refused_with_411(secured):
    conn = http.client.HTTPConnection("127.0.0.1", int(secured.registry_url.rsplit(":", 1)[1]), timeout=30)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    conn.request("POST", f"{api_path()}/registered_models", body=iter([b'{"name":', b'"chunked"}']), headers=headers)
    resp = conn.getresponse()
    assert resp.status == 411 and b"Content-Length" in resp.read()
    conn.close()
    assert connect(secured).get_registered_model("chunked") is None


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_a_bad_content_length_gets_400_and_the_proxy_keeps_serving(secured, length):
    port = int(secured.registry_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        request = f"POST {api_path()}/registered_models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        raw.sendall(f"{request}Content-Length: {length}\r\n\r\n".encode())
        assert raw.makefile("rb").readline().split()[1] == b"400"
    assert connect(secured).get_registered_model("no-such-model") is None  # the next request is served


def test_make_doctor_says_ok_when_the_stack_answers_and_names_the_fix_when_not(secured):
    secured = Settings.from_env(state_dir=secured.state_dir)  # the registry's URL now (tests above restart parts)
    env = {**os.environ, "MRH_STATE_DIR": str(secured.state_dir), "MRH_BACKEND": "local"}
    run = [sys.executable, str(ROOT / "setup" / "doctor.py")]
    ok = subprocess.run(run, env=env, capture_output=True, text=True, timeout=60)
    assert (ok.returncode, ok.stdout) == (
        0,
        f"ok: the local backend answers (Model Registry at {secured.registry_url}).\n",
    )
    wrong = subprocess.run(run, env={**env, "MRH_TOKEN": "not-" + TOKEN}, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 1
    assert wrong.stdout.startswith(f"PROBLEM: the Model Registry at {secured.registry_url} refused the token")
    assert "  fix:   store the token the registry expects" in wrong.stdout and TOKEN not in wrong.stdout
    usage = subprocess.run([*run, "doctor"], env=env, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage: python setup/doctor.py" in usage.stderr


def test_the_cluster_doctor_asks_the_registry_with_the_token_and_the_kfp_api(secured):
    """mh.doctor on the cluster backend as through the port-forwards: this registry behind the token, KFP's stub."""
    secured = Settings.from_env(state_dir=secured.state_dir)
    with KfpApi() as api:
        cluster = secured.replace(backend="cluster", kfp_host=api.url, namespace="kubeflow")
        assert doctor(cluster) == [] and ("GET", "/apis/v2beta1/experiments") in api.calls
        [found] = doctor(cluster.replace(token=Secret("not-" + TOKEN)))
    assert found.check == f"the Model Registry at {secured.registry_url} refused the token"
    assert "401" in found.cause and "mh.ensure_secret" in found.fix and "MRH_TOKEN" in found.fix
    [found] = doctor(cluster)  # the KFP API has stopped
    assert found.check == f"the KFP API at {api.url} does not answer" and "MaxRetryError" in found.cause
