"""docs/benchmarks.md shows the benchmark table that `make bench` last wrote, word for word."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"


def test_the_benchmarks_page_shows_the_last_measured_table():
    table = (RESULTS / "results.md").read_text().strip()
    assert table in (ROOT / "docs" / "benchmarks.md").read_text(), (
        "copy benchmarks/results/results.md into docs/benchmarks.md"
    )


def test_the_recorded_ratios_meet_the_goals_they_state():
    rows = json.loads((RESULTS / "results.json").read_text())["rows"]
    goals = {r["name"]: (r["ratio"], r["goal"]) for r in rows if "goal" in r}
    assert len(goals) == 5, goals  # registration, versions_frame, find_versions, the tutorial full/clean, notebook 05
    assert {name: ratio <= goal for name, (ratio, goal) in goals.items()} == dict.fromkeys(goals, True)
    frame = next(r for r in rows if r["name"].startswith("versions_frame"))
    assert frame["ours_s"] <= frame["goal_seconds"] == 2.0
