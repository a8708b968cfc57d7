"""The report site of the executed tutorial, opened in headless Chromium (Debian's chromium + chromium-driver)."""

import shutil
from pathlib import Path

import pytest
from report import build_report
from run_notebooks import TUTORIAL, TUTORIAL_MODELS

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = ROOT / "build" / "test-notebooks"
SITE = ROOT / "build" / "test-report"
# Tables each page must show (pandas DataFrames render as table.dataframe), and pages with figures.
MIN_TABLES = {"00_cluster_setup": 1, "02_component_authoring": 2, "03_compile_pipeline": 3, "04_submit_run": 1,
              "05_inspect_registry": 4, "06_train_gate_promote": 1, "07_registry_to_serving": 1}  # fmt: skip
FIGURES = {"00_cluster_setup": 1, "02_component_authoring": 1, "05_inspect_registry": 1, "06_train_gate_promote": 1}


@pytest.fixture(scope="module")
def browser(tutorial):  # the tutorial must have run (tests/notebooks/conftest.py)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("Debian's chromium and chromium-driver are not installed: run `make install`")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600"):  # fmt: skip
        options.add_argument(flag)
    build_report(EXECUTED, SITE)
    (SITE / "screenshots").mkdir(exist_ok=True)
    drv = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield drv
    finally:
        drv.quit()


def test_index_lists_every_step_as_ok(browser):
    browser.get((SITE / "index.html").as_uri())
    rows = browser.find_elements("css selector", "table.steps tbody tr")
    assert [r.find_element("css selector", "td a").text for r in rows] == list(TUTORIAL)
    assert [r.find_elements("css selector", "td")[1].text for r in rows] == ["ok"] * len(TUTORIAL)
    assert all(len(r.find_elements("css selector", "td li")) >= 2 for r in rows)  # what each step teaches
    registered = {tuple(td.text for td in r.find_elements("css selector", "td")[:2])
                  for r in browser.find_elements("css selector", "table.registered tbody tr")}  # fmt: skip
    assert {m for m, _ in registered} == set(TUTORIAL_MODELS)
    browser.save_screenshot(str(SITE / "screenshots" / "index.png"))


@pytest.mark.parametrize("name", TUTORIAL)
def test_page_renders_tables_and_figures(browser, name):
    browser.get((SITE / f"{name}.html").as_uri())
    h1 = browser.find_element("css selector", "h1").text
    assert h1.startswith(name[:2]) and browser.title == h1.rstrip("¶").strip()
    nav = [a.get_attribute("href").rsplit("/", 1)[-1] for a in browser.find_elements("css selector", "nav.mrh-nav a")]
    i = TUTORIAL.index(name)
    expected = [
        "index.html",
        *[f"{n}.html" for n in TUTORIAL[max(i - 1, 0) : i]],
        *[f"{n}.html" for n in TUTORIAL[i + 1 : i + 2]],
    ]
    assert nav[: len(expected)] == expected
    tables = browser.find_elements("css selector", "table.dataframe")
    assert len(tables) >= MIN_TABLES.get(name, 0), f"{name}: {len(tables)} tables"
    images = browser.find_elements("css selector", ".jp-OutputArea img")
    assert len(images) >= FIGURES.get(name, 0)
    broken = browser.execute_script(
        "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).length"
    )
    assert broken == 0
    assert "Traceback" not in browser.find_element("css selector", "body").text
    browser.save_screenshot(str(SITE / "screenshots" / f"{name}.png"))


def test_exercise_answer_is_collapsed_and_opens_on_a_click(browser):
    browser.get((SITE / "03_compile_pipeline.html").as_uri())
    (answer,) = browser.find_elements("css selector", "details")
    code = answer.find_element("css selector", ".jp-InputArea")
    assert answer.get_attribute("open") is None and not code.is_displayed()
    answer.find_element("css selector", "summary").click()
    assert answer.get_attribute("open") is not None and code.is_displayed()
    assert "mh.record(" not in browser.find_element("css selector", "body").text
    browser.execute_script("arguments[0].scrollIntoView()", answer)
    browser.save_screenshot(str(SITE / "screenshots" / "answer-open.png"))


def test_no_page_loads_from_the_network(browser):
    import re

    pages = sorted(SITE.glob("*.html"))
    assert len(pages) == len(TUTORIAL) + 1
    remote = re.compile(r"<(?:script|link|img|iframe)[^>]*\b(?:src|href)=[\"']https?://|import\(\s*[\"']https?://")
    assert [p.name for p in pages if remote.search(p.read_text())] == []
