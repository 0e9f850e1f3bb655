"""The HTML report in a real headless browser (Chromium): it renders with no console message, and the
parts a reader looks for are there. Skips when no Chromium is installed (scripts/test does not need it;
on Debian: apt-get install chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_plot import PNG_MAGIC, contig

from virnucpro.cli.main import main
from virnucpro.fsutil.atomic import write_json_atomic
from virnucpro.outputs.paths import OutputPaths
from virnucpro.outputs.writer import ResultWriter

BROWSER = next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))),
               None)
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--enable-logging=stderr", "--v=0")


def _browse(page: Path, tmp_path: Path, *action: str) -> tuple[str, list[str]]:
    """Chromium's output for `action` on the page, and the page's console messages."""
    result = subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *action, page.as_uri()],
                            capture_output=True, text=True, timeout=120, check=True)
    return result.stdout, [line for line in result.stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture
def report(tmp_path) -> Path:
    outdir = tmp_path / "run"
    writer = ResultWriter(outdir, write_hits=True, min_length=120)
    writer.add(contig("host", [0.1] * 30 + [0.9] * 12 + [None] + [0.15] * 30))
    writer.add(contig("phage", [0.8, 0.7, 0.95, 0.3]))
    for index in range(20):
        writer.add(contig(f"read{index}", [index / 20], chunk_size=150))
    writer.add(contig("nothing", [None]))
    writer.add(contig("tiny", [0.9], chunk_size=100))
    writer.finish()
    write_json_atomic(OutputPaths(outdir).run_json, {"inputs": ["contigs.fa"], "parameters": {"chunk_size": 500},
                                                     "models": {"classifier": {"path": "/m/500_model.pth"}}})
    assert main(["plot", str(outdir)]) == 0
    return OutputPaths(outdir).report_html


def test_the_console_check_catches_errors(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<html><body><script>console.error("boom"); missing();</script></body></html>')
    _, console = _browse(page, tmp_path, "--dump-dom")
    assert any("boom" in line for line in console) and any("missing is not defined" in line for line in console)


def test_the_report_renders_with_its_key_parts_and_no_console_message(report, tmp_path):
    dom, console = _browse(report, tmp_path, "--dump-dom")
    assert console == []
    for part in ('id="inputs"', 'id="summary"', 'id="regions"', 'id="not-called"', "Top hits", "contigs.fa"):
        assert part in dom, part
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', dom)) == 2
    assert "host|region_1</td><td>15,000</td><td>21,000</td>" in dom
    assert "<td>tiny</td><td>100</td><td>too_short</td>" in dom
    shot = tmp_path / "report.png"
    _browse(report, tmp_path, f"--screenshot={shot}", "--window-size=1200,3000")
    assert shot.read_bytes().startswith(PNG_MAGIC) and shot.stat().st_size > 50_000  # figures drawn, not blank
