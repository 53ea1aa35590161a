"""`ceiling report`: the sections and numbers of a synthetic study, offline rendering in headless
Chromium, partial and empty sweeps, bad arguments, and the real smoke sweep end to end."""

from __future__ import annotations

import dataclasses
import html
import json
import re
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import Store, Trial
from tests.factories import make_trial
from tests.orchestrator.report.conftest import write_synthetic_sweep

N_BOOT = "40"  # enough for intervals and verdicts; the CLI default (1000) is for real studies
SECTION_IDS = (
    "settings",
    "loss-compute",
    "isoflop",
    "parameters",
    "comparison",
    "recall",
    "tuning",
    "excluded",
)
# A reference that would make the page reach the network when it opens.
EXTERNAL = re.compile(
    r"<(script|link|img|iframe|source|embed)\b[^>]*\b(src|href)\s*=\s*[\"']?\s*(https?:)?//|@import|url\(\s*[\"']?https?:",
    re.IGNORECASE,
)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


@pytest.fixture(scope="module")
def synth_report(synth_store, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, str]:
    url, _ = synth_store
    out = tmp_path_factory.mktemp("synth-report") / "nested" / "report.html"
    result = invoke("report", "synth", "--db", url, "--out", str(out), "--n-boot", N_BOOT)
    assert result.exit_code == 0, result.output
    assert "wrote" in result.stderr and str(out) in result.stderr.replace("\n", "")
    return url, out, out.read_text(encoding="utf-8")


def test_report_has_every_section_and_the_cli_numbers(synth_report) -> None:
    url, _, page = synth_report
    for section in SECTION_IDS:
        assert f'id="{section}"' in page, section
    # settings: the spec as YAML and the code version
    assert "architectures:" in page and "git:abc123def456" in page
    # fitted parameters with intervals: the same numbers as `ceiling laws --json`
    laws_json = json.loads(invoke("laws", "synth", "--db", url, "--n-boot", N_BOOT, "--json").stdout)
    for arch, fit in laws_json["fits"].items():
        for name in ("E", "alpha", "beta"):
            lo, hi = fit["ci95"][name]
            status = fit["health"]["status"]  # health stands beside every fitted number
            assert (
                f"<td>{arch}</td><td>chinchilla</td><td>{status}</td><td>{name}</td>"
                f'<td class="num">{fit["params"][name]:.4g}</td>' in page
            )
            assert f"[{lo:.4g}, {hi:.4g}]" in page
    # the isoFLOP law is fitted too (3 budgets x 4 sizes per architecture)
    assert re.search(r"<td>isoflop</td><td>(healthy|weak|degenerate)</td><td>k_N</td>", page)
    assert 'id="fig-isoflop"' in page
    # verdicts: the text `ceiling compare` gives
    compare = json.loads(invoke("compare", "synth", "--db", url, "--n-boot", N_BOOT, "--json").stdout)
    verdict = compare["comparisons"]["hawk"]["verdict"]
    assert verdict.startswith("hawk vs transformer:")
    assert f'<li class="verdict">{html.escape(verdict)}</li>' in page
    assert compare["comparisons"]["hawk"]["verdicts"]["largest_measured"]["kind"] in page
    # recall (copy scores), tuning (none in this store), failed and diverged trials with reasons
    assert 'id="fig-recall-copy_score"' in page
    assert "no tuning in this study" in page
    assert "synth-fail" in page and "RuntimeError: worker ran out of memory" in page
    assert "diverged at step 7" in page and "loss became NaN at step 7" in page


def test_report_is_self_contained(synth_report) -> None:
    _, out, page = synth_report
    assert EXTERNAL.search(page) is None, EXTERNAL.search(page)
    assert not [tag for tag in re.findall(r"<script\b[^>]*>", page) if "src" in tag]
    # plotly.js inlined exactly once, each figure calls it
    assert page.count("Plotly.newPlot") >= 3
    assert len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", page)) == 1
    assert out.stat().st_size > 3 * 2**20  # the library itself is ~4.5 MB


def render(binary: str, path: Path) -> dict:
    """Open the file in headless Chromium; return plots drawn, errors, requests and the page text."""
    from tests.dashboard.cdp import Browser

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        browser = Browser(binary, Path(profile), height=3000)
        try:
            browser.call("Network.enable")
            browser.navigate(path.resolve().as_uri())
            expected = browser.wait_for(
                "document.readyState === 'complete' && document.querySelectorAll('.plotly-graph-div').length",
                30,
            )
            drawn = browser.wait_for(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {expected} && "
                "document.querySelectorAll('.js-plotly-plot').length",
                30,
            )
            text = browser.evaluate("document.body.innerText")
            urls = [
                e["params"]["request"]["url"]
                for e in browser.events
                if e.get("method") == "Network.requestWillBeSent"
            ]
            return {
                "expected": expected,
                "drawn": drawn,
                "errors": browser.errors(),
                "urls": urls,
                "text": text,
            }
        finally:
            browser.close()


def test_report_renders_offline_in_chromium(synth_report, chromium: str) -> None:
    _, out, _ = synth_report
    state = render(chromium, out)
    assert state["errors"] == []
    # loss vs compute, its panels per architecture, isoFLOP, copy score
    assert state["expected"] == 4 and state["drawn"] == 4
    assert all(url.startswith(("file:", "data:")) for url in state["urls"]), state["urls"]
    assert "hawk vs transformer:" in state["text"]


def test_partial_and_empty_sweeps_say_why(store_url: str, tmp_path: Path) -> None:
    """On SQLite and PostgreSQL: a sweep too small for any law, and a sweep with no trials at all."""
    url = store_url
    write_synthetic_sweep(url, "tiny", sizes=(2e4, 5e4), budgets=(1e12,))
    store = Store.open(url)
    store.upsert_sweep("empty", {"name": "empty"}, workdir=None, code_version=None)
    store.close()
    out = tmp_path / "tiny.html"
    result = invoke("report", "tiny", "--db", url, "--out", str(out), "--n-boot", N_BOOT)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    # one notice for both architectures (the same reason), naming them
    assert (
        "no law (form auto) for 2 architectures (hawk, transformer): --form auto: no form could be fitted "
        "(chinchilla: form &#x27;chinchilla&#x27; has 5 parameters: needs &gt;= 8 runs; got 2" in page
    )
    assert "no isoFLOP profile" in page and "no isoFLOP law for 2 architectures (hawk, transformer)" in page
    assert "no comparison: the baseline &#x27;transformer&#x27; has no fit (form auto)" in page
    out = tmp_path / "empty.html"
    result = invoke("report", "empty", "--db", url, "--out", str(out), "--metric", "final_val_loss")
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "no finished runs with &#x27;val_loss&#x27; yet" in page and "no recall results" in page


def test_power_law_of_compute_form(synth_store, tmp_path: Path) -> None:
    url, _ = synth_store
    out = tmp_path / "power.html"
    result = invoke(
        "report", "synth", "--db", url, "--out", str(out), "--form", "power_c", "--n-boot", N_BOOT
    )
    assert result.exit_code == 0, result.output
    compare = json.loads(
        invoke("compare", "synth", "--db", url, "--form", "power_c", "--n-boot", N_BOOT, "--json").stdout
    )
    page = out.read_text()
    assert re.search(r"<td>hawk</td><td>power_c</td><td>(healthy|weak|degenerate)</td><td>gamma</td>", page)
    assert f'<li class="verdict">{html.escape(compare["comparisons"]["hawk"]["verdict"])}</li>' in page


def test_bad_arguments_exit_2_naming_them(synth_store, tmp_path: Path) -> None:
    url, _ = synth_store
    cases = {
        ("nope",): "sweep 'nope' is not in the store; known: synth",
        ("synth", "--metric", "accuracy"): "--metric",
        ("synth", "--form", "isoflop"): "--form",
        ("synth", "--n-boot", "1"): "--n-boot",
        ("synth", "--at", "lots"): "--at",
        ("synth", "--out", str(tmp_path)): "--out",
    }
    for args, message in cases.items():
        result = invoke("report", *args, "--db", url)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr.replace("\n", ""), (args, result.stderr)
    result = invoke("report", "synth", "--workdir", str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no store" in result.stderr
    assert "final_val_loss" in invoke("report", "--help").output


def test_tuning_results_are_shown(synth_store) -> None:
    """The tuning table and figure, from results in the shape ``Store.tuning_results`` returns."""
    from orchestrator.report import ReportSettings, collect
    from orchestrator.report.render import render_html

    url, _ = synth_store
    store = Store.open(url)
    data = collect(store, "synth", ReportSettings(n_boot=int(N_BOOT)))
    store.close()
    candidates = [
        {"lr": lr, "loss": 3.0 + (lr - 3e-3) ** 2 * 1e4, "trial_id": f"t{lr}"} for lr in (1e-3, 3e-3, 1e-2)
    ]
    tuning = [
        {"arch": "transformer", "label": "transformer", "method": "search", "lr": 3e-3,
         "details": {"candidates": candidates}},
        {"arch": "hawk", "label": "hawk", "method": "rule", "lr": 2.2e-3,
         "details": {"rule": {"coefficient": 0.5, "exponent": -0.25}}},
    ]  # fmt: skip
    page = render_html(dataclasses.replace(data, tuning=tuning))
    assert "no tuning in this study" not in page and 'id="fig-tuning"' in page
    assert (
        '<td>search</td><td class="num">0.003</td><td class="num">–</td><td>0.001: 3.04, 0.003: 3, 0.01: 3.49</td>'
        in page
    )
    assert (
        '<td>rule</td><td class="num">0.0022</td><td class="num">–</td><td>–</td><td>coefficient=0.5, exponent=-0.25</td>'
        in page
    )


@pytest.mark.skipif(not hasattr(Store, "record_tuning_choice"), reason="store without tuning choices")
def test_tuning_choices_from_the_store(tmp_path: Path) -> None:
    """Choices recorded through the store's own API appear in the report, one row and one curve each."""
    url = f"sqlite:///{tmp_path / 'ceiling.db'}"
    write_synthetic_sweep(url, "tuned", sizes=(2e4, 5e4), budgets=(1e12,))
    store = Store.open(url)
    for arch, best in (("transformer", 3e-3), ("hawk", 1e-2)):
        candidates = [
            {"lr": lr, "loss": 4.0 - (lr == best), "trial_id": f"{arch}-{lr}"} for lr in (1e-3, 3e-3, 1e-2)
        ]
        store.record_tuning_choice(
            "tuned", arch=arch, label="20k", method="search", lr=best, details={"candidates": candidates}
        )
    store.close()
    out = tmp_path / "tuned.html"
    result = invoke("report", "tuned", "--db", url, "--out", str(out), "--n-boot", N_BOOT)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "no tuning in this study" not in page and 'id="fig-tuning"' in page
    assert '<td>hawk</td><td>20k</td><td>search</td><td class="num">0.01</td>' in page
    assert '<td>transformer</td><td>20k</td><td>search</td><td class="num">0.003</td>' in page


@pytest.mark.skipif(not hasattr(Trial, "role"), reason="store without trial roles")
def test_trials_that_are_not_law_points_are_listed_with_their_role(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ceiling.db'}"
    write_synthetic_sweep(url, "roles", sizes=(2e4, 5e4), budgets=(1e12,))
    store = Store.open(url)
    store.add_trials(
        "roles", [make_trial("roles-tune", role="tuning"), make_trial("roles-trunk", role="trunk")]
    )
    for trial_id in ("roles-tune", "roles-trunk"):
        store.finish(trial_id, store.claim(trial_id), final_val_loss=4.0)
    store.close()
    out = tmp_path / "roles.html"
    assert invoke("report", "roles", "--db", url, "--out", str(out), "--n-boot", N_BOOT).exit_code == 0
    page = out.read_text()
    assert "main 6, trunk 1, tuning 1" in page  # trials by role, in the settings
    for trial_id, role in (("roles-tune", "tuning"), ("roles-trunk", "trunk")):
        row = re.search(rf"<tr><td>{trial_id}</td><td>transformer</td><td>{role}</td>.*?</tr>", page)
        assert row and "not a law point" in row.group(0), trial_id


@pytest.mark.slow
def test_smoke_sweep_end_to_end(smoke_run, chromium: str, tmp_path: Path) -> None:
    """The real smoke sweep (1 architecture, 4 runs): the report says why there is no law or verdict."""
    workdir, _ = smoke_run
    out = tmp_path / "smoke.html"
    result = invoke("report", "smoke", "--workdir", str(workdir), "--out", str(out), "--n-boot", N_BOOT)
    assert result.exit_code == 0, result.output
    page = out.read_text()
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    sweep, trials = store.get_sweep("smoke"), store.trials("smoke")
    store.close()
    assert "name: smoke" in page and sweep.code_version in page
    assert f"done {len(trials)}" in page
    # --form auto: 4 runs are too few for chinchilla (said in the health table); the simplest law of
    # compute is shown, marked degenerate, and there is nothing to compare it with.
    assert "chinchilla: form &#x27;chinchilla&#x27; has 5 parameters: needs &gt;= 8 runs; got 4" in page
    assert "<td>degenerate</td>" in page
    assert (
        "no comparison: only &#x27;transformer&#x27; has runs; a comparison needs a second architecture"
        in page
    )
    for trial in trials:
        assert trial.id[:8] in page  # every run is a point of the loss-compute figure
    state = render(chromium, out)
    assert state["errors"] == [] and state["drawn"] == state["expected"] >= 1


def test_markdown_summary_has_the_reports_numbers(synth_store, tmp_path: Path) -> None:
    url, _ = synth_store
    out = tmp_path / "summary.md"
    result = invoke("report", "synth", "--db", url, "--out", str(out), "--n-boot", N_BOOT)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert text.startswith("# synth: summary")
    for heading in ("## Laws", "## Health and backtests", "## Comparison with transformer"):
        assert heading in text
    laws_json = json.loads(invoke("laws", "synth", "--db", url, "--n-boot", N_BOOT, "--json").stdout)
    for group, fit in laws_json["fits"].items():
        assert f"| {group} | {fit['form']} | {fit['health']['status']} |" in text
    verdict = json.loads(invoke("compare", "synth", "--db", url, "--n-boot", N_BOOT, "--json").stdout)[
        "comparisons"
    ]["hawk"]["verdict"]
    assert f"- {verdict}" in text  # the verdict sentence exactly as `ceiling compare` prints it
