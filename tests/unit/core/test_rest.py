"""The session layer without a server: property decoding, error mapping, retries, secrecy."""

import pickle
import socket

import pytest
from model_registry.types import ModelVersion
from mr_openapi import ModelVersion as Wire

from mrhelpers.core.errors import AuthError, InvalidInput, MRHelpersError, RegistryUnavailable
from mrhelpers.core.rest import (
    RegistryHttpError,
    RegistrySession,
    Version,
    decode_properties,
    session_for,
    with_retries,
)

RAW = {
    "s": {"metadataType": "MetadataStringValue", "string_value": "text"},
    "i": {"metadataType": "MetadataIntValue", "int_value": "-123456789"},
    "d": {"metadataType": "MetadataDoubleValue", "double_value": 0.25},
    "b": {"metadataType": "MetadataBoolValue", "bool_value": True},
    "st": {"metadataType": "MetadataStructValue", "struct_value": "eyJhIjogMX0="},
    "empty": {"metadataType": "MetadataStringValue", "string_value": ""},
}


def _version(props):
    return {"id": "7", "name": "v1", "state": "LIVE", "registeredModelId": "3", "customProperties": props,
            "createTimeSinceEpoch": "1796061446779", "lastUpdateTimeSinceEpoch": "1796061446780"}  # fmt: skip


def test_decoding_matches_the_clients_own_types():
    theirs = ModelVersion.from_basemodel(Wire.from_dict(_version(RAW))).custom_properties
    assert decode_properties(RAW) == theirs
    assert {k: type(v) for k, v in decode_properties(RAW).items()} == {k: type(v) for k, v in theirs.items()}


def test_an_integral_double_stays_a_float_where_the_client_would_read_an_int():
    raw = {"big": {"metadataType": "MetadataDoubleValue", "double_value": 100000000000000000000}}
    assert ModelVersion.from_basemodel(Wire.from_dict(_version(raw))).custom_properties["big"] == 10**20
    assert isinstance(decode_properties(raw)["big"], float)


def test_a_listed_version_reads_like_the_clients_type():
    ours = Version(_version(RAW))
    theirs = ModelVersion.from_basemodel(Wire.from_dict(_version(RAW)))
    for field in ("id", "name", "registered_model_id", "create_time_since_epoch", "custom_properties"):
        assert getattr(ours, field) == getattr(theirs, field), field
    assert ours.state == theirs.state.value


def test_a_refused_token_is_an_auth_error_at_once():
    calls = []

    def refused():
        calls.append(1)
        raise RegistryHttpError(401, "GET", "/registered_models", "unauthorized")

    with pytest.raises(AuthError, match="HTTP 401"):
        with_retries(refused, "http://x", "hint", "secret", retries=3, backoff=0)
    assert len(calls) == 1


def test_a_client_error_is_not_retried_and_names_the_status():
    calls = []

    def bad():
        calls.append(1)
        raise RegistryHttpError(400, "POST", "/model_versions", "bad request: name")

    with pytest.raises(RegistryHttpError, match="HTTP 400 .* POST /model_versions") as raised:
        with_retries(bad, "http://x", "hint", "secret", retries=3, backoff=0)
    assert len(calls) == 1 and raised.value.status == 400
    assert pickle.loads(pickle.dumps(raised.value)).status == 400


def test_a_lost_database_is_retried_then_unavailable():
    calls = []

    def down():
        calls.append(1)
        raise RegistryHttpError(500, "GET", "/x", "dial tcp 127.0.0.1:3306: connect: connection refused")

    with pytest.raises(RegistryUnavailable, match="its database does not"):
        with_retries(down, "http://x", "hint", "secret", retries=3, backoff=0)
    assert len(calls) == 3


def test_a_transaction_the_database_rolled_back_is_sent_again():
    """Racing lifecycle writes: MariaDB ends one with a deadlock and asks to restart it (seen in test_edges)."""
    calls = []
    deadlock = (
        '{"code":"","message":"error updating model version context property: Error 1213 (40001): '
        'Deadlock found when trying to get lock; try restarting transaction"}'
    )

    def racing():
        calls.append(1)
        if len(calls) == 1:
            raise RegistryHttpError(500, "PATCH", "/model_versions/7", deadlock)
        return "written"

    assert with_retries(racing, "http://x", "hint", "secret", retries=3, backoff=0) == "written"
    assert len(calls) == 2

    def other_500():
        calls.append(1)
        raise RegistryHttpError(500, "PATCH", "/model_versions/7", "error updating model version: invalid")

    calls.clear()
    with pytest.raises(RegistryHttpError, match="HTTP 500"):
        with_retries(other_500, "http://x", "hint", "secret", retries=3, backoff=0)
    assert len(calls) == 1  # any other server error is not retried


def test_a_closed_port_gives_registry_unavailable_naming_the_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        session = RegistrySession(f"http://127.0.0.1:{port}", None, "me", "start it with make up", "secret", backoff=0)
        with pytest.raises(RegistryUnavailable, match=f"127.0.0.1:{port}.*make up"):
            session.find_model("m")


def test_the_session_hides_its_token():
    session = RegistrySession("http://127.0.0.1:1", "s3cr3t-token", "me", "hint", "secret")
    assert "s3cr3t" not in repr(session) and "s3cr3t" not in repr(vars(session))
    assert session.http().headers["Authorization"] == "Bearer s3cr3t-token"
    with pytest.raises(TypeError, match="connect"):
        pickle.dumps(session)


def test_an_object_not_from_connect_is_refused_by_name():
    with pytest.raises(InvalidInput, match=r"mrhelpers\.connect\(settings\)"):
        session_for(object())


def test_a_server_that_is_not_the_registry_is_named_as_such():
    import http.server

    class Html(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            body = b"<html><body>Kubeflow Central Dashboard</body></html>"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = _serve(Html)
    try:
        session = RegistrySession(f"http://127.0.0.1:{server.server_port}", None, "me", "hint", "secret")
        with pytest.raises(RegistryHttpError, match="not JSON.*registry_url.*Central Dashboard"):
            session.find_model("m")
    finally:
        server.shutdown()
        server.server_close()


def _serve(handler, tls_dir=None):
    import http.server
    import ssl
    import subprocess
    import threading

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls_dir is not None:  # a self-signed certificate that nothing here trusts
        key, cert = tls_dir / "key.pem", tls_dir / "cert.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
             "-days", "1", "-subj", "/CN=127.0.0.1"],
            check=True, capture_output=True,
        )  # fmt: skip
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_redirect_to_a_sign_in_page_is_an_auth_error_naming_it():
    import http.server

    class SignIn(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            self.send_response(302)
            self.send_header("Location", "https://dex.example/auth?client=kubeflow")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _serve(SignIn)
    try:
        session = RegistrySession(f"http://127.0.0.1:{server.server_port}", "tok3n-x", "me", "hint", "secret")
        with pytest.raises(AuthError, match=r"redirected GET /registered_model to https://dex\.example") as raised:
            session.find_model("m")
        assert "tok3n" not in str(raised.value)
    finally:
        server.shutdown()
        server.server_close()


def test_an_untrusted_certificate_fails_at_once_and_says_how_to_trust_it(tmp_path):
    import http.server

    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the handler's API
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _serve(Ok, tmp_path)
    try:
        session = RegistrySession(f"https://127.0.0.1:{server.server_port}", None, "me", "hint", "secret", backoff=0)
        real, calls = session.send, []
        session.send = lambda *args: calls.append(args) or real(*args)
        with pytest.raises(RegistryUnavailable, match="TLS handshake failed.*SSL_CERT_FILE"):
            session.find_model("m")
        assert len(calls) == 1  # not retried: a handshake that failed once fails again
    finally:
        server.shutdown()
        server.server_close()


def test_the_api_path_is_the_one_the_installed_client_calls():
    """No literal path in mrhelpers: the pinned client (and the server it is tested with) agree on it."""
    from mrhelpers.core.rest import api_path
    from mrhelpers.core.settings import versions

    assert api_path() == versions()["MODEL_REGISTRY_API_PATH"]
    newer = '    resource_path="/api/model_registry/v1/registered_models",\n'  # the line as 0.3.15+ generate it
    assert api_path(newer) == "/api/model_registry/v1"
    with pytest.raises(MRHelpersError, match="model-registry version that setup/constraints.txt"):
        api_path("no such line")
