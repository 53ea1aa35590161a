"""`--form auto`: the richest law form the data identify.

Forms are tried richest first: Chinchilla's L(N, D) (five parameters), then L(C) with a floor,
then a pure power law in compute. The first one whose health is not `degenerate` is chosen, and
the choice records every form tried with its status and first reason, so a user sees why a
simpler law was shown. An explicit form is never replaced: this only runs for "auto".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from .api import FitResult
from .errors import FitDidNotConverge, LawInputError
from .health import DEGENERATE

AUTO = "auto"
AUTO_ORDER = ("chinchilla", "power_c", "power_c_noE")


def _attempt(
    fit_form: Callable[[str], Sequence[FitResult]], form: str
) -> tuple[list[FitResult] | None, dict]:
    try:
        fits = list(fit_form(form))
    except (LawInputError, FitDidNotConverge) as exc:
        return None, {"form": form, "status": "not fitted", "reason": str(exc)}
    worst = next((f for f in fits if f.health and f.health.is_degenerate), None)
    if worst is not None:
        return fits, {"form": form, "status": DEGENERATE, "reason": worst.health.summary(1)}
    status = "weak" if any(f.status == "weak" for f in fits) else "healthy"
    return fits, {
        "form": form,
        "status": status,
        "reason": fits[0].health.summary(1) if fits[0].health else "",
    }


def choose_forms(
    fit_form: Callable[[str], Sequence[FitResult]], order: Sequence[str] = AUTO_ORDER
) -> list[FitResult]:
    """Fit `fit_form(form)` (one or several fits that must share a form, e.g. X and its baseline)
    for each form in order; return the first set with no degenerate fit, each tagged with the
    choice. If every form is degenerate, the last one that fitted is returned (still tagged)."""
    tried: list[dict[str, Any]] = []
    chosen: list[FitResult] | None = None
    for form in order:
        fits, record = _attempt(fit_form, form)
        tried.append(record)
        if fits is not None:
            chosen = fits
            if record["status"] != DEGENERATE:
                break
    if chosen is None:
        reasons = "; ".join(f"{t['form']}: {t['reason']}" for t in tried)
        raise LawInputError(f"--form auto: no form could be fitted ({reasons})")
    form = chosen[0].form
    if tried[-1]["form"] == form and tried[-1]["status"] == DEGENERATE:
        why = "no form is identified by these runs; showing the simplest (degenerate: not an estimate)"
    elif len(tried) == 1:
        why = f"{form} is identified ({tried[0]['status']})"
    else:
        skipped = ", ".join(f"{t['form']} {t['status']}" for t in tried[:-1])
        why = f"{form} is the richest form identified ({skipped})"
    choice = {"requested": AUTO, "chosen": form, "why": why, "tried": tried}
    return [replace(f, settings={**f.settings, "form_choice": choice}) for f in chosen]


def choose_form(fit_form: Callable[[str], FitResult], order: Sequence[str] = AUTO_ORDER) -> FitResult:
    """`choose_forms` for a single fit."""
    return choose_forms(lambda form: [fit_form(form)], order)[0]
