"""The benchmark table: `make bench`'s renderer, the results it wrote, and the page that shows them."""

import json
from pathlib import Path

from benchmarks.run import render_table

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def _recorded() -> dict:
    return json.loads((RESULTS / "results.json").read_text())


def test_the_table_is_what_the_renderer_makes_of_the_recorded_rows_and_the_page_shows_it():
    recorded = _recorded()
    table = render_table(recorded["machine"], recorded["rows"])
    assert (RESULTS / "results.md").read_text().strip() == table, "run make bench again: the renderer changed"
    assert table in (ROOT / "docs" / "benchmarks.md").read_text(), (
        "copy benchmarks/results/results.md into docs/benchmarks.md"
    )


def test_a_goal_is_met_only_within_its_ratio_and_its_seconds():
    info = _recorded()["machine"]
    row = {"name": "x", "ours": "1 s", "ratio": 0.2, "goal": 0.25, "ours_s": 1.5, "goal_seconds": 2.0}
    rendered = {
        label: render_table(info, [dict(row, **change)]).splitlines()[-1].split(" | ")[4]
        for label, change in {"met": {}, "ratio": {"ratio": 0.3}, "seconds": {"ours_s": 2.5}}.items()
    }
    assert rendered == {"met": "<= 0.25 and <= 2 s: met", "ratio": "<= 0.25 and <= 2 s: NOT met",
                        "seconds": "<= 0.25 and <= 2 s: NOT met"}  # fmt: skip


def test_the_recorded_ratios_meet_the_goals_they_state():
    rows = _recorded()["rows"]
    goals = {r["name"]: (r["ratio"], r["goal"]) for r in rows if "goal" in r}
    assert len(goals) == 5, goals  # registration, versions_frame, find_versions, the tutorial full/clean, notebook 05
    assert "NOT met" not in render_table(_recorded()["machine"], rows)
