"""The report's "Efficiency" section: collected from the store, rendered as HTML or Markdown.

Quality against decode cost at a chosen context length (the Pareto frontier over architectures and
sizes), decode cost and state bytes against L with the crossover length where each architecture gets
cheaper than the baseline, recall against state bytes, extrapolation curves, a law of loss against
inference cost (fitted like any law, with its health), and the table of claims.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.report.efficiency_claims import Claim, efficiency_claims
from orchestrator.report.efficiency_points import (
    ModelCosts,
    Relative,
    chosen_context,
    model_costs,
    pareto_front,
    relative_costs,
)

COST_LAW_FORM = "power_c"  # loss = E + A * cost^-alpha: the law of compute, with inference cost as compute


@dataclass(frozen=True)
class EfficiencySection:
    models: list[ModelCosts]
    context: int | None  # the L quality is read against decode cost at
    baseline: str
    relatives: list[Relative]
    claims: list[Claim]
    cost_metric: str | None  # the final metric the cost law uses (decode_ms_per_token_L<context>)
    cost_laws: dict[str, Any] = field(default_factory=dict)  # label -> laws.FitResult
    cost_law_missing: dict[str, str] = field(default_factory=dict)  # label -> why there is none


def recall_state_points(models: list[ModelCosts], context: int | None) -> list[tuple[str, str, float, float]]:
    """(label, name, state bytes at ``context``, copy score) of every model that has both."""
    if context is None:
        return []
    return [
        (m.label, m.name, m.state_bytes[context], m.copy_score)
        for m in models
        if context in m.state_bytes and m.copy_score is not None
    ]


def collect_efficiency(
    store: Any, sweep: str, *, baseline: str = "transformer", context: int | None = None, n_boot: int = 1000,
    seed: int = 0,
) -> EfficiencySection | None:  # fmt: skip
    """The section's data, or None when the sweep has no efficiency measurements."""
    from orchestrator.store.efficiency import efficiency_study

    models = model_costs(efficiency_study(store, sweep))
    if not models:
        return None
    chosen = chosen_context(models, context)
    cost_metric = None if chosen is None else f"decode_ms_per_token_L{chosen}"
    section = EfficiencySection(
        models=models,
        context=chosen,
        baseline=baseline,
        relatives=relative_costs(models, baseline),
        claims=efficiency_claims(models, baseline),
        cost_metric=cost_metric,
    )
    if cost_metric is not None:
        _cost_laws(store, sweep, section, n_boot, seed)
    return section


def _cost_laws(store: Any, sweep: str, section: EfficiencySection, n_boot: int, seed: int) -> None:
    """val_loss against decode cost per architecture: ``law_runs`` with the cost as its compute column."""
    from orchestrator.report.collect import _why
    from orchestrator.store.law_inputs import fit_cached, law_runs

    runs = law_runs(store, sweep, metric="val_loss", cost=section.cost_metric)
    for group in runs.groups:
        try:
            section.cost_laws[group] = fit_cached(
                store, runs.only(group), metric="val_loss", form=COST_LAW_FORM, sweep=sweep,
                group=f"{group}@{section.cost_metric}", n_boot=n_boot, seed=seed,
            )  # fmt: skip
        except Exception as exc:  # one bad fit must not lose the report
            section.cost_law_missing[group] = _why(exc)


# --- HTML -------------------------------------------------------------------------------------------
def efficiency_html(section: EfficiencySection | None, heading: str) -> str:
    from orchestrator.report import efficiency_figures as figures
    from orchestrator.report.render import Markup, esc, figure_html, note, number, table

    if section is None:
        return heading + note(
            "no efficiency measurements in this sweep: add an efficiency: block to an LM sweep "
            "(see examples/efficiency.yaml) and every trained model is measured at the end of training"
        )
    out = [heading]

    def caption(text: str) -> None:
        out.append(f'<p class="muted">{esc(text)}</p>')

    L = section.context
    if L is not None:
        out.append(f"<h3>Quality against decode cost at L = {L:,}</h3>")
        out.append(figure_html(figures.pareto_figure(section.models, L), "fig-eff-pareto"))
        front = pareto_front(section.models, L)
        caption(
            "Each point is one architecture at one size (seeds averaged): its validation loss against the "
            "milliseconds one generated token costs after L tokens of context (batch 1). The dashed line is "
            "the Pareto frontier: " + ", ".join(m.name for m in front) + "."
        )
    out.append("<h3>Decode cost and state against context length</h3>")
    out.append(figure_html(figures.decode_cost_figure(section.models), "fig-eff-decode"))
    out.append(figure_html(figures.state_figure(section.models), "fig-eff-state"))
    caption(
        "Crosses: the Transformer's KV cache counted analytically (layers x 2 x KV heads x head dim x L x "
        "bytes per number), beside the bytes its decode state actually holds."
    )
    if section.relatives:
        out.append(f"<h3>Crossover: where each architecture gets cheaper than {esc(section.baseline)}</h3>")
        out.append(
            figure_html(figures.speedup_figure(section.relatives, section.baseline), "fig-eff-speedup")
        )
        rows = []
        for r in section.relatives:
            longest = max(r.speedup) if r.speedup else None
            rows.append(
                [r.model.name, Markup(number(r.model.params, 3)), r.crossover_text,
                 Markup(number(r.speedup.get(longest), 3)) if longest else "–",
                 r.memory_crossover_text,
                 Markup(number(r.memory_saving.get(longest), 3)) if longest in r.memory_saving else "–",
                 Markup(number(r.model.flatness(), 3))]
            )  # fmt: skip
        out.append(
            table(
                (
                    "model",
                    "params",
                    "decode cheaper from L",
                    "speedup at longest L",
                    "state smaller from L",
                    "state saving at longest L",
                    "decode flatness",
                ),
                rows,
                numeric=(1, 3, 5, 6),
            )  # fmt: skip
        )
        caption(
            "Against the baseline of the same size target, batch 1. Flatness: tokens/s at the longest L over "
            "the shortest (a recurrent model should stay at 0.8 or above)."
        )
    points = _recall_points(section)
    out.append("<h3>Recall against state bytes</h3>")
    if points:
        out.append(
            figure_html(
                figures.recall_state_figure(points, f"state bytes per sequence at L = {L:,}", "copy score"),
                "fig-eff-recall",
            )
        )
        caption("The in-context copy score each model records at the end of training, against its state.")
    else:
        out.append(note("no model recorded a copy score with a state measured at the chosen L"))
    out.append("<h3>Length extrapolation</h3>")
    out.append(figure_html(figures.extrapolation_figure(section.models), "fig-eff-extrapolation"))
    out.append(figure_html(figures.position_figure(section.models), "fig-eff-positions"))
    caption(
        "Each architecture's largest size: validation loss at multiples of the training length over its "
        "loss at the training length, and its loss by position when reading the longest length."
    )
    out.append(_cost_law_html(section))
    out.append("<h3>The claims, tested at our scale</h3>")
    out.append(
        table(
            ("claim", "tested at our scale as", "measured", "verdict", "what our scale cannot test"),
            [[c.claim, c.tested_as, c.measured, c.verdict, c.untestable] for c in section.claims],
        )
    )
    return "\n".join(out)


def _recall_points(section: EfficiencySection) -> list[tuple[str, str, float, float]]:
    return recall_state_points(section.models, section.context)


def _cost_law_html(section: EfficiencySection) -> str:
    from orchestrator.report.render import Markup, esc, interval, note, number, table

    out = f"<h3>Loss against inference cost ({esc(section.cost_metric or 'not measured')})</h3>"
    rows = []
    for group, fit in sorted(section.cost_laws.items()):
        document = fit.to_json()
        for name, value in document["params"].items():
            rows.append(
                [group, document["form"], (document.get("health") or {}).get("status", "unknown"), name,
                 Markup(number(value)), Markup(interval(document["ci95"].get(name))), document["n_runs"]]
            )  # fmt: skip
    if rows:
        out += table(
            ("architecture", "form", "health", "parameter", "value", "95% CI", "runs"), rows, (4, 5, 6)
        )
        out += (
            f'<p class="muted">val_loss = E + A * cost^-alpha with cost = {esc(section.cost_metric)} (ms per '
            "token), fitted like any law: <code>ceiling laws SWEEP --form power_c --cost "
            f"{esc(section.cost_metric)}</code> gives the same fits; the cost is a final metric, so "
            "<code>ceiling compare --metric</code> takes it too.</p>"
        )
    for group, why in sorted(section.cost_law_missing.items()):
        out += note(f"{group}: no law of loss against inference cost: {why}")
    return out


# --- Markdown ---------------------------------------------------------------------------------------
def efficiency_markdown(section: EfficiencySection | None) -> str:
    from orchestrator.report.markdown import md_table

    if section is None:
        return "## Efficiency\n\nNo efficiency measurements in this sweep.\n"
    L = section.context
    out = ["## Efficiency\n"]
    out.append("### The claims, tested at our scale\n")
    out.append(
        md_table(
            ("claim", "tested at our scale as", "measured", "verdict", "what our scale cannot test"),
            [[c.claim, c.tested_as, c.measured, c.verdict, c.untestable] for c in section.claims],
        )
    )
    contexts = sorted({x for m in section.models for x in m.contexts})
    out.append("\n### Decode cost (ms per token, batch 1) and state bytes by context length\n")
    out.append(
        md_table(
            (
                "model",
                "params",
                "val loss",
                *(f"ms/token L={x}" for x in contexts),
                *(f"state bytes L={x}" for x in contexts),
                "flatness",
            ),
            [
                [
                    m.name,
                    f"{m.params:,.0f}",
                    _n(m.val_loss),
                    *(_n(m.decode_ms(x), 3) for x in contexts),
                    *(_n(m.state_bytes.get(x), 4) for x in contexts),
                    _n(m.flatness(), 3),
                ]
                for m in section.models
            ],
        )  # fmt: skip
    )
    if L is not None:
        front = pareto_front(section.models, L)
        out.append(f"\nPareto frontier of validation loss against decode cost at L = {L}: ")
        out.append(
            ", ".join(f"{m.name} ({_n(m.decode_ms(L), 3)} ms, loss {_n(m.val_loss)})" for m in front) + ".\n"
        )
    if section.relatives:
        out.append(f"\n### Against {section.baseline} at matched size\n")
        out.append(
            md_table(
                (
                    "model",
                    "decode cheaper from L",
                    "speedup by L",
                    "state smaller from L",
                    "state saving by L",
                ),
                [
                    [
                        r.model.name,
                        r.crossover_text,
                        ", ".join(f"{x}: {v:.2f}x" for x, v in sorted(r.speedup.items())),
                        r.memory_crossover_text,
                        ", ".join(f"{x}: {100 * v:.0f}%" for x, v in sorted(r.memory_saving.items())),
                    ]
                    for r in section.relatives
                ],
            )  # fmt: skip
        )
    prefill = sorted({x for m in section.models for x in m.prefill_tps})
    train = sorted({x for m in section.models for x in m.train_tps})
    if prefill or train:
        out.append("\n### Prefill and training throughput by length (tokens/s, batch 1)\n")
        out.append(
            md_table(
                ("model", *(f"prefill T={x}" for x in prefill), *(f"train T={x}" for x in train)),
                [
                    [
                        m.name,
                        *(_n(m.prefill_tps.get(x), 3) for x in prefill),
                        *(_n(m.train_tps.get(x), 3) for x in train),
                    ]
                    for m in section.models
                ],
            )  # fmt: skip
        )
    factors = sorted({x // m.train_len for m in section.models if m.train_len for x in m.extrapolation})
    if factors:
        out.append("\n### Length extrapolation (val loss at f x the training length)\n")
        out.append(
            md_table(
                ("model", *(f"{f}x" for f in factors)),
                [
                    [m.name, *(_n(m.extrapolation.get(f * m.train_len)) for f in factors)]
                    for m in section.models
                    if m.train_len
                ],
            )
        )
    if section.cost_laws or section.cost_law_missing:
        out.append(f"\n### Loss against inference cost ({section.cost_metric})\n")
        rows = []
        for group, fit in sorted(section.cost_laws.items()):
            document = fit.to_json()
            params = document["params"]
            rows.append(
                [group, document["form"], fit.status,
                 "; ".join(f"{k} {_n(v)}" for k, v in params.items()), document["n_runs"]]
            )  # fmt: skip
        rows += [
            [group, COST_LAW_FORM, "no fit", why, ""]
            for group, why in sorted(section.cost_law_missing.items())
        ]
        out.append(md_table(("architecture", "form", "health", "parameters", "runs"), rows))
    return "\n".join(out)


def _n(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}g}"
