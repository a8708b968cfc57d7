"""A newer model-registry client speaks /api/model_registry/v1: mrhelpers follows it without an edit.

Reads the generated API module of client 0.3.18 from its wheel (PyPI), without installing it. No /v1 server can be
built here (docs/versions: which pairs are tested), so this checks the path mrhelpers would call, not a round trip.
"""

import subprocess
import sys
import zipfile

from mrhelpers.core.rest import api_path


def test_a_v1_client_gives_the_v1_path(tmp_path):
    pip = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--disable-pip-version-check", "-d"]
    got = subprocess.run([*pip, str(tmp_path), "model-registry==0.3.18"], capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr[-2000:]
    (wheel,) = tmp_path.glob("model_registry-0.3.18-*.whl")
    with zipfile.ZipFile(wheel) as z:
        source = z.read("mr_openapi/api/model_registry_service_api.py").decode()
    assert api_path(source) == "/api/model_registry/v1"
