"""A token-checking proxy (nginx) in front of the local registry, as on a secured cluster."""

import pytest

from mrhelpers import AuthError, Secret, Settings, connect, ensure_secret, localstack, models_frame, register_version
from mrhelpers.localstack import _api_path, _http_status
from tests.conftest import stack_settings

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
    url = f"{secured.registry_url}{_api_path()}/registered_models"
    assert _http_status(url) == 401
    assert _http_status(url, "not-" + TOKEN) == 401
    assert _http_status(url, TOKEN) == 200
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
    try:
        ensure_secret(secured, secured.secret_name, {"token": "rotated-" + TOKEN})
        with pytest.raises(AuthError):
            connect(secured, retries=1)  # still the old token
        assert connect(Settings.from_env(state_dir=secured.state_dir), retries=1)
    finally:
        ensure_secret(secured, secured.secret_name, {"token": TOKEN})


def test_up_again_keeps_the_proxy_and_its_url(secured):
    again = localstack.up(secured, quiet=True)  # auth stays on without asking again
    assert again.ok and again.registry_url == secured.registry_url
