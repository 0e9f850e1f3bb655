"""benchmarks/results/: every result is listed in its README (command, commit, who cites it), follows the
naming scheme described there, and every result README.md cites exists."""

from __future__ import annotations

import re

from workflow_tools import REPO

RESULTS = REPO / "benchmarks" / "results"
BENCHMARKS = [path.stem.removeprefix("bench_") for path in (REPO / "benchmarks").glob("bench_*.py")]


def _entries() -> list[str]:
    return sorted(path.name + ("/" if path.is_dir() else "") for path in RESULTS.iterdir() if path.name != "README.md")


def test_every_result_is_listed_in_the_results_readme():
    listed = (RESULTS / "README.md").read_text()
    assert [entry for entry in _entries() if f"`{entry}" not in listed] == []


def test_results_follow_the_naming_scheme():
    for entry in _entries():
        if entry.endswith("/"):  # a session: <machine>_<topic>[_run<N>]/
            assert re.fullmatch(r"h200_[a-z0-9]+(_run\d+)?/", entry), entry
        else:  # one run: <benchmark>[_<machine>][_<run or variant>].json, its log <same stem>_log.txt
            benchmark = next((name for name in BENCHMARKS if entry.startswith((f"{name}.", f"{name}_"))), None)
            assert benchmark and re.fullmatch(r"[a-z0-9_]+(\.json|_log\.txt)", entry), entry


def test_every_result_the_readme_cites_exists():
    performance = (REPO / "README.md").read_text().split("## Performance", 1)[1].split("\n## ", 1)[0]
    cited = set(re.findall(r"`((?:[\w.-]+/)*[\w.-]+\.json|h200_[\w./-]+)`", performance))
    assert cited, "the Performance section cites no result"
    assert sorted(name for name in cited if not (RESULTS / name).exists()) == []
