"""From stored measurements to what people read: models per architecture and size, the Pareto frontier,
the crossover context length, the claims table, the report's Efficiency section and its Markdown."""

from __future__ import annotations

import pytest

from orchestrator.report.efficiency_claims import efficiency_claims
from orchestrator.report.efficiency_points import (
    crossover,
    growth_exponent,
    model_costs,
    pareto_front,
    relative_costs,
)
from orchestrator.store import Store
from orchestrator.store.efficiency import efficiency_study
from tests.orchestrator.efficiency_study.stored_study import CONTEXTS, SWEEP, store_study


@pytest.fixture
def study_store(tmp_path) -> Store:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    store_study(url)
    store = Store.open(url)
    yield store
    store.close()


@pytest.fixture
def models(study_store):
    return model_costs(efficiency_study(study_store, SWEEP))


def test_one_model_per_architecture_and_size(models):
    names = [m.name for m in models]
    assert names == [
        f"{label} {size}"
        for label in ("mamba", "mega", "retnet", "transformer")
        for size in ("20k", "50k", "100k", "200k")
    ]
    retnet = models[names.index("retnet 20k")]
    assert retnet.contexts == list(CONTEXTS) and retnet.flatness() == pytest.approx(1.0)
    assert retnet.decode_ms(512) == pytest.approx(1.0) and retnet.train_len == 128
    assert models[names.index("transformer 20k")].flatness() == pytest.approx(64**-0.5)


def test_pareto_front_keeps_the_models_nothing_beats(models):
    front = pareto_front(models, 32768)
    names = [m.name for m in front]
    costs = [m.decode_ms(32768) for m in front]
    assert (
        costs == sorted(costs) and "transformer 20k" not in names
    )  # slower and worse than mega/retnet 100k?
    for m in models:
        if m in front:
            continue
        assert any(o.decode_ms(32768) <= m.decode_ms(32768) and o.val_loss <= m.val_loss for o in front)


def test_crossover_is_interpolated_in_log_length():
    at, text = crossover({512: 0.5, 2048: 2.0})
    assert at == pytest.approx(1024) and "between 512 and 2048" in text
    assert crossover({512: 1.5, 2048: 3.0})[1].startswith("cheaper at every L")
    assert crossover({512: 0.5, 2048: 0.9}) == (None, "not cheaper up to L = 2048")
    assert growth_exponent({1: 1.0, 2: 4.0, 4: 16.0}) == pytest.approx(2.0)


def test_relative_costs_match_each_model_with_the_baseline_of_its_size(models):
    relatives = {r.model.name: r for r in relative_costs(models)}
    retnet = relatives["retnet 20k"]
    assert retnet.baseline.name == "transformer 20k"
    # transformer 2000 * (L/512)^-0.5 vs retnet 1000: equal at L = 512 * 4 = 2048
    assert retnet.crossover == pytest.approx(2048)
    assert retnet.speedup[32768] == pytest.approx(4.0)
    assert retnet.memory_saving[8192] == pytest.approx(1 - 32_768 / (65_536 * 16))
    assert retnet.batch_speedup[(512, 4)] == pytest.approx(0.5)


def test_the_claims_table_restates_every_claim_with_a_number_and_a_verdict(models):
    claims = efficiency_claims(models)
    assert len(claims) == 8
    for claim in claims:
        assert claim.tested_as and claim.untestable and claim.verdict != "not measured", claim
        assert any(ch.isdigit() for ch in claim.measured), claim
    by_start = {c.claim.split()[0]: c for c in claims}
    assert "4.00x at L=32768" in claims[0].measured and claims[0].verdict.startswith("holds in direction")
    assert "97%" in claims[1].measured and claims[1].verdict.startswith("holds for the state")
    assert claims[3].verdict.startswith("holds up to the longest L")  # flat prefill speed, flat decode
    assert "mamba 1.050 at 8x" in claims[6].measured and by_start["Recurrent"].verdict.startswith("mixed")
    assert "2.83x per doubling" in claims[5].measured and claims[5].verdict.startswith(
        "not yet"
    )  # time ~ L^1.5


def test_without_a_baseline_or_measurements_the_claims_say_so():
    claims = efficiency_claims([])
    assert {c.verdict for c in claims} == {"not measured"}


def test_the_report_has_an_efficiency_section_with_figures_and_claims(study_store, tmp_path):
    from orchestrator.report import ReportSettings, write_report

    page = tmp_path / "report.html"
    data = write_report(study_store, SWEEP, page, ReportSettings(n_boot=20))
    html = page.read_text()
    assert '<h2 id="efficiency">Efficiency</h2>' in html
    for figure in ("fig-eff-pareto", "fig-eff-decode", "fig-eff-state", "fig-eff-speedup", "fig-eff-recall",
                   "fig-eff-extrapolation", "fig-eff-positions"):  # fmt: skip
        assert f'id="{figure}"' in html, figure
    assert "The claims, tested at our scale" in html and "RetNet decodes 8.4x faster" in html
    assert data.efficiency.context == 32768 and data.efficiency.cost_metric == "decode_ms_per_token_L32768"
    # a law of loss against inference cost per architecture, through the fit cache like any law
    assert set(data.efficiency.cost_laws) | set(data.efficiency.cost_law_missing) == {
        "mamba",
        "mega",
        "retnet",
        "transformer",
    }
    summary = tmp_path / "summary.md"
    write_report(study_store, SWEEP, summary, ReportSettings(n_boot=20))
    text = summary.read_text()
    assert "## Efficiency" in text and "| claim | tested at our scale as |" in text
    assert "ms/token L=32768" in text and "Pareto frontier" in text


def test_a_sweep_without_measurements_says_how_to_get_them(tmp_path):
    from orchestrator.report.efficiency_section import efficiency_html

    assert "add an efficiency: block" in efficiency_html(None, "<h2>Efficiency</h2>")


def test_a_recall_frontier_needs_some_recall(models):
    frontier = efficiency_claims(models)[7]
    assert frontier.verdict.startswith("a trade-off exists") or frontier.verdict.startswith(
        "one architecture"
    )
    for model in models:
        model.copy_score = 0.001  # tiny LMs that do not copy at all
    frontier = efficiency_claims(models)[7]
    assert frontier.verdict.startswith("untestable here: no model copies")
    assert "best copy score 0.001" in frontier.measured
