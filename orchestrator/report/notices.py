"""Short texts shared by the report and the dashboard: a fit's health label and notices grouped by reason.

With a dozen architectures, the same "no isoFLOP law" reason would otherwise be printed a dozen times;
here a reason is said once with the architectures it applies to. Pure Python (the dashboard imports it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REASON_CHARS = 44  # a panel is ~370 px wide: its title's second line holds the reason's gist


def _field(health: Any, name: str) -> Any:
    """``health.status`` on a FitResult's health object, or ``health["status"]`` on its JSON form."""
    if isinstance(health, Mapping):
        return health.get(name)
    return getattr(health, name, None)


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    """A reason's gist for a title: its first clause without the interval or the threshold in brackets
    ("the floor E's 95% CI [1e-09, 2.0] spans 2e+09x: ..." -> "floor E's 95% CI spans 2e+09x"), cut
    at ``limit`` characters with an ellipsis."""
    gist = re.split(r"[:;]\s", text, maxsplit=1)[0]
    gist = re.sub(r"\s*(\[[^\]]*\]|\([^)]*\))", "", gist)
    gist = re.sub(r"^the\s+", "", " ".join(gist.split()))
    return gist if len(gist) <= limit else gist[: limit - 1].rstrip() + "…"


def health_label(fit: Any) -> str:
    """The fit's health for a title: ``healthy``, or ``degenerate: beta CI spans 58x`` (the first reason,
    shortened); empty when the fit carries no health (``laws`` older than its fit-health block)."""
    health = getattr(fit, "health", None)
    status = _field(health, "status") if health is not None else None
    if not status:
        return ""
    reasons = tuple(_field(health, "reasons") or ())
    return f"{status}: {shorten(str(reasons[0]))}" if reasons and status != "healthy" else str(status)


def panel_title(group: str, fit: Any, form: str, *, baseline: bool = False) -> str:
    """A small-multiples panel's title: "mamba — chinchilla, healthy" (or "no chinchilla fit"). The form
    is the fit's own, which differs from the requested one when that is "auto" (chosen per architecture)."""
    name = f"{group} (baseline)" if baseline else group
    if fit is None:
        return f"{name} — no fit" if form == "auto" else f"{name} — no {form} fit"
    fitted = getattr(fit, "form", None) or form
    label = health_label(fit)
    return f"{name} — {fitted}, {label}" if label else f"{name} — {fitted}"


def by_reason(missing: Mapping[str, str]) -> list[tuple[list[str], str]]:
    """``{group: reason}`` as ``[(groups, reason), ...]``: each distinct reason once, in the order of its
    first group (sorted), with every group it applies to."""
    grouped: dict[str, list[str]] = {}
    for group in sorted(missing):
        grouped.setdefault(missing[group], []).append(group)
    return [(groups, reason) for reason, groups in grouped.items()]


def name_groups(groups: list[str]) -> str:
    """``mamba``, or ``3 architectures (gla, hawk, mamba)``: every one is named, so a reader can check
    whether the architecture they care about is among them."""
    return groups[0] if len(groups) == 1 else f"{len(groups)} architectures ({', '.join(groups)})"


def grouped_notices(missing: Mapping[str, str], what: str) -> list[str]:
    """One sentence per distinct reason: "no isoFLOP law for 12 architectures (...): <reason>". The key
    "*" (a reason that applies to the whole section) reads "no <what>: <reason>"."""
    out = [f"no {what}: {missing['*']}"] if "*" in missing else []
    for groups, reason in by_reason({g: r for g, r in missing.items() if g != "*"}):
        out.append(f"no {what} for {name_groups(groups)}: {reason}")
    return out
