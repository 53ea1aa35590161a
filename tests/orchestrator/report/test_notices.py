"""Health labels for panel titles and notices grouped by reason (shared by the report and the dashboard)."""

from __future__ import annotations

from types import SimpleNamespace

from orchestrator.report.notices import grouped_notices, health_label, panel_title, shorten

SPAN = "beta's 95% CI [0.02, 1.16] spans 58x (> 10x)"


def test_health_label_reads_the_object_the_json_or_nothing() -> None:
    degenerate = SimpleNamespace(health=SimpleNamespace(status="degenerate", reasons=(SPAN, "other")))
    assert health_label(degenerate) == "degenerate: beta's 95% CI spans 58x"
    assert health_label(SimpleNamespace(health={"status": "healthy", "reasons": []})) == "healthy"
    assert health_label(SimpleNamespace()) == ""  # a fit from before the health block
    assert (
        panel_title("mamba", degenerate, "chinchilla")
        == "mamba — chinchilla, degenerate: beta's 95% CI spans 58x"
    )
    assert (
        panel_title("transformer", SimpleNamespace(), "power_c", baseline=True)
        == "transformer (baseline) — power_c"
    )
    assert panel_title("mega", None, "chinchilla") == "mega — no chinchilla fit"
    # with --form auto each architecture's own form is named
    assert panel_title("gla", SimpleNamespace(form="power_c"), "auto") == "gla — power_c"
    assert panel_title("gla", None, "auto") == "gla — no fit"


def test_shorten_keeps_the_gist_of_a_reason() -> None:
    floor = "the floor E's 95% CI [1.26e-09, 2.01] spans 1.6e+09x: the data do not show a floor"
    assert shorten(floor) == "floor E's 95% CI spans 1.6e+09x"
    assert shorten("x" * 80, limit=10) == "x" * 9 + "…"


def test_a_shared_reason_is_one_notice_naming_every_architecture() -> None:
    missing = {"gla": "too few runs", "hawk": "too few runs", "mamba": "diverged", "*": "no baseline"}
    assert grouped_notices(missing, "isoFLOP law") == [
        "no isoFLOP law: no baseline",
        "no isoFLOP law for 2 architectures (gla, hawk): too few runs",
        "no isoFLOP law for mamba: diverged",
    ]
