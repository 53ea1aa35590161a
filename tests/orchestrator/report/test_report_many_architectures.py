"""The report with twelve architectures stays readable: one law panel per architecture against the
baseline, the combined chart without bands until asked, and a notice shared by many architectures
said once, naming them all. Checked in the HTML and in headless Chromium (with a screenshot)."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from tests.many_architectures import ARCHITECTURES, SHORT, write_many_architecture_sweep

N_BOOT = "40"
ISOFLOP_REASON = "isoflop needs at least 2 compute budgets"


@pytest.fixture(scope="module")
def twelve_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    workdir = tmp_path_factory.mktemp("twelve")
    url = f"sqlite:///{workdir / 'ceiling.db'}"
    write_many_architecture_sweep(url)
    out = workdir / "report.html"
    # --form chinchilla: three architectures have too few runs for it, the notice this test is about
    # (under the default --form auto they would get a law of compute instead).
    result = CliRunner().invoke(
        app, ["report", "twelve", "--db", url, "--out", str(out), "--n-boot", N_BOOT, "--form", "chinchilla"]
    )
    assert result.exit_code == 0, result.output
    return out, out.read_text(encoding="utf-8")


def sections(page: str) -> dict[str, str]:
    """Each <h2 id=...> section's HTML, by id."""
    parts = re.split(r'<h2 id="([\w-]+)">', page)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def notes(html_text: str) -> list[str]:
    return re.findall(r'<p class="note">(.*?)</p>', html_text)


def test_a_notice_shared_by_many_architectures_is_said_once_naming_them(twelve_report) -> None:
    _, page = twelve_report
    by_section = sections(page)
    isoflop = [n for n in notes(by_section["isoflop"]) if ISOFLOP_REASON in n]
    assert len(isoflop) == 1, isoflop
    assert isoflop[0].startswith(f"no isoFLOP law for 12 architectures ({', '.join(ARCHITECTURES)}):")
    chinchilla = [n for n in notes(by_section["loss-compute"]) if "no chinchilla law" in n]
    assert chinchilla == [
        f"no chinchilla law for 3 architectures ({', '.join(SHORT)}): form &#x27;chinchilla&#x27; has 5 "
        "parameters: needs &gt;= 8 runs; got 4"
    ]
    for arch in ARCHITECTURES:  # the old one-box-per-architecture form is gone everywhere
        assert f"no isoFLOP law for {arch}:" not in page


def test_one_law_panel_per_architecture_in_chromium(twelve_report, chromium: str, tmp_path: Path) -> None:
    from tests.dashboard.cdp import Browser

    out, page = twelve_report
    assert 'id="fig-law-panels"' in page
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = Browser(chromium, Path(profile), width=1300, height=1400)
        try:
            browser.navigate(out.resolve().as_uri())
            expected = browser.wait_for(
                "document.readyState === 'complete' && document.querySelectorAll('.plotly-graph-div').length",
                30,
            )
            drawn = browser.wait_for(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected} && "
                "document.querySelectorAll('.js-plotly-plot').length",
                30,
            )
            assert drawn == expected == 2  # combined chart and panels (no isoFLOP, recall or tuning here)
            panels = browser.evaluate(
                """(() => { const gd = document.getElementById('fig-law-panels');
                  return { subplots: gd.querySelectorAll('.cartesianlayer .subplot').length,
                           titles: (gd.layout.annotations || []).map(a => a.text) }; })()"""
            )
            assert panels["subplots"] == len(ARCHITECTURES)
            titles = panels["titles"]
            assert titles[0].startswith("transformer (baseline) — chinchilla")  # the baseline comes first
            for arch in ARCHITECTURES:
                assert sum(t.startswith(f"{arch} ") for t in titles) == 1, (arch, titles)
            for arch in SHORT:
                assert f"{arch} — no chinchilla fit" in titles
            # the combined chart: bands hidden until the second button shows them
            bands = "gd => gd.data.filter(t => t.fill === 'toself').map(t => t.visible)"
            shown = f"({bands})(document.getElementById('fig-loss-compute'))"
            assert browser.evaluate(shown) == [False] * (len(ARCHITECTURES) - len(SHORT))
            browser.evaluate(
                "document.querySelectorAll('#fig-loss-compute .updatemenu-button')[1]"
                ".dispatchEvent(new MouseEvent('click', {bubbles: true}))"
            )
            assert browser.wait_for(f"{shown}.every(v => v === true)", 10)
            assert browser.errors() == []
            # a picture of the panels for a person to look at (kept with the test's temp files)
            browser.evaluate("document.getElementById('fig-law-panels').scrollIntoView()")
            time.sleep(0.5)
            shot = browser.screenshot(tmp_path / "law-panels.png")
            assert shot.stat().st_size > 20_000
        finally:
            browser.close()
