"""Screenshot a model version's page in the running Model Registry UI, with headless Chromium.

    python setup/ui/screenshot.py MODEL [--version NAME] --out PATH.png

The UI server must run (``make ui``, or ``python setup/ui/server.py start``). Without ``--version``,
the model's newest version. Uses Debian's ``chromium`` and ``chromedriver`` through Selenium (the
``dev`` extra), in a fresh profile that is deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import server  # noqa: E402 - setup/ui/server.py, beside this file

from mrhelpers.core.settings import Settings  # noqa: E402

FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
)  # fmt: skip


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1500) -> Iterator[Any]:
    """A headless Chromium (Selenium WebDriver) in a fresh profile; quit and deleted on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        raise SystemExit("Chromium is not installed: `apt-get install chromium chromium-driver` (or `make install`).")
    profile = tempfile.mkdtemp(prefix="mrh-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)


def api(url: str, token: str, path: str, **query: str) -> Any:
    """GET the adapter's ``/api/v1/<path>`` and return its ``data``."""
    full = f"{url}api/v1/{path}" + ("?" + urllib.parse.urlencode(query) if query else "")
    request = urllib.request.Request(full, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - our loopback server
        return json.loads(resp.read())["data"]


def version_path(url: str, token: str, model: str, version: str | None = None) -> str:
    """The UI's path of ``model``'s version page (``version`` or the newest one)."""
    reg = f"model_registry/{server.REGISTRY_ID}"
    try:
        found = api(url, token, f"{reg}/registered_model", name=model)
    except urllib.error.HTTPError as exc:
        raise SystemExit(
            f"The registry has no model {model!r} (HTTP {exc.code}): `mh.models_frame(registry)` lists them."
        ) from None
    versions = api(url, token, f"{reg}/registered_models/{found['id']}/versions", pageSize="1000")
    items = versions.get("items") or []
    chosen = [v for v in items if v["name"] == version] if version else items
    if not chosen:
        raise SystemExit(f"Model {model!r} has no version {version!r} in the registry.")
    newest = max(chosen, key=lambda v: int(v["createTimeSinceEpoch"]))
    return f"model-registry/{server.REGISTRY_ID}/registeredModels/{found['id']}/versions/{newest['id']}/details"


def open_signed_in(browser: Any, url: str, token: str, path: str) -> None:
    """Open ``url + path`` after presenting the token once (``?token=`` sets the session cookie)."""
    browser.get(f"{url}{path}?token={urllib.parse.quote(token)}")


def wait_for_version_page(browser: Any, version: str | None = None, timeout: float = 60) -> str:
    """Wait until the version page shows its data (not the spinner); return the page's text."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(b: Any) -> str | bool:
        text = b.find_element("tag name", "body").text
        crumbs = b.find_elements("css selector", "[data-testid=breadcrumb-version-name]")
        shown = crumbs[0].text.strip() if crumbs else ""
        loaded = "Version ID" in text and "Source model format" in text and shown == (version or shown) != ""
        return text if loaded else False

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(ready)


def show_all_properties(browser: Any) -> None:
    """Expand the properties table: the UI shows the first 5 and a "Show N more properties" button."""
    for button in browser.find_elements("css selector", "[data-testid=expand-control-button]"):
        if button.text.startswith("Show") and "more" in button.text:
            button.click()


def take(settings: Settings, model: str, version: str | None, out: Path) -> Path:
    """Screenshot ``model``'s version page into ``out`` (PNG); return ``out``."""
    record = server.running(settings)
    if not record:
        raise SystemExit("The Model Registry UI server is not running: `make ui` builds and starts it.")
    token = server.ui_token(settings)
    path = version_path(record["url"], token, model, version)
    out.parent.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        open_signed_in(browser, record["url"], token, path)
        wait_for_version_page(browser, version)
        show_all_properties(browser)
        browser.save_screenshot(str(out))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="setup/ui/screenshot.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--version", help="version name (default: the newest)")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    args = parser.parse_args(argv)
    print(take(Settings.from_env(), args.model, args.version, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
