"""bench/suite.py's RESULTS.md block: a partial run replaces its own tables and keeps the others."""

from __future__ import annotations

from bench import suite


def record(figure: str, median: float) -> dict:
    return {"figure": figure, "backend": "sqlite", "median": median, "min": median, "max": median, "unit": "s",
            "target": "<= 1"}


def block(results: dict, earlier: dict | None = None) -> str:
    return suite.render(results, "0.1 / 0.1 / 0.1", earlier)


def test_a_partial_run_keeps_the_other_tables_with_the_date_they_were_measured() -> None:
    full = "before\n" + block({name: [record(f"{name} figure", 0.5)] for name in suite.SCRIPTS}) + "\nafter\n"
    measured_then = full.split(suite.BEGIN)[1].strip().splitlines()[0]

    partial = block({"timers": [record("timers figure", 0.25)]}, suite.earlier_tables(full))

    for name in suite.SCRIPTS:
        assert f"### {name}" in partial
    assert "| timers figure | sqlite | **0.25** |" in partial
    assert "| pages figure | sqlite | **0.5** |" in partial
    assert partial.count(f"_{measured_then}_") == len(suite.SCRIPTS) - 1  # every kept table, not the new one
    assert "kept as they were: storage, reports, pages, http" in partial


def test_a_table_kept_twice_keeps_one_date() -> None:
    first = block({name: [record(f"{name} figure", 0.5)] for name in suite.SCRIPTS})
    second = block({"timers": [record("timers figure", 0.25)]}, suite.earlier_tables(first))
    third = block({"http": [record("http figure", 0.75)]}, suite.earlier_tables(second))
    pages = suite.earlier_tables(third)["pages"]
    assert pages.count("_Measured") == 1
    assert "| timers figure | sqlite | **0.25** |" in third  # measured in the second run, kept in the third
    assert suite.earlier_tables(third)["timers"].count("_Measured") == 1


def test_nothing_earlier_and_nothing_measured_renders_no_table() -> None:
    assert "###" not in block({})
