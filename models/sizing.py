"""Sizes: parse "1.2M"-style targets, and search (n_layers, d_model) to hit a non-embedding target.

The search is shared by every architecture; an architecture supplies only ``count(n_layers, d_model)``
(its exact non-embedding parameter count for the shape its own rules derive from those two knobs).

The rule (``search_shape``):

1. Candidates: every depth in 2..256 (two layers at least: one-layer attention models cannot form
   the induction heads that in-context recall needs) x every width of ``width_grid()`` (from 16,
   multiples of 8 below 64, of 16 below 128, of 32 below 512, of 64 above: multiples of the head
   dim the Transformer uses at that width). Per depth, only the two widths bracketing the target
   are kept (count grows with width; found by bisection).
2. Among candidates within ``rel_tol`` of the target, minimise
   ``|log(d_model / n_layers / 48)| + 3 * |log(params / target)|``: an aspect ratio near 48 (the
   middle of the 32..64 region where Kaplan et al. 2020, Fig. 5, find loss flat in shape), traded
   against size error. If none is within ``rel_tol``, take the closest in size.
3. An architecture with a secondary knob (the Transformer's MLP width) searches with
   ``rel_tol = TRIM_REL_TOL`` (20%) and, when the pick is more than ``SIZING_REL_TOL`` (5%) off, moves
   that knob to the value closest to the target (``closest_value``). Only small models (< ~1M),
   where the width grid is coarse, need the trim; the result is within 5% of the target from 10k
   to 10B (tests check 10%).

Every built-in's ``size_config`` is ``size_by_search`` with the architecture's own ``derive`` (its shape
rules from (n_layers, d_model) and the held overrides) and, where it has one, its trim knob.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SIZING_REL_TOL = 0.05  # target accuracy of sizing; the ladder test allows 10%
TRIM_REL_TOL = 0.20  # search tolerance when a secondary knob (MLP width) trims the rest
ASPECT_RATIO = 48.0  # preferred d_model / n_layers: middle of Kaplan et al.'s flat 32..64 region
SIZE_WEIGHT = 3.0  # a 1% size error costs as much as a 3% aspect-ratio deviation
DEFAULT_DEPTHS = range(2, 257)  # >= 2 layers: one layer cannot form induction heads (recall evals)

_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_SIZE_RE = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.IGNORECASE)


def parse_size(size: int | float | str) -> int:
    """Parameter count from ``50000``, ``"50k"``, ``"1.2M"``, ``"3B"``, ``"1e6"`` (suffixes k/M/B/G/T,
    case-insensitive, powers of 1000). Rounded to an int; must be >= 1. Raises ``ValueError`` otherwise."""
    if isinstance(size, bool):
        raise ValueError(f"size must be a number or a string like '50k', '1.2M', '3B'; got {size!r}")
    if isinstance(size, int):
        value: float = size
    elif isinstance(size, float):
        if not math.isfinite(size):
            raise ValueError(f"size must be finite, got {size!r}")
        value = size
    elif isinstance(size, str):
        match = _SIZE_RE.match(size)
        if match is None:
            raise ValueError(
                f"cannot parse size {size!r}: expected a number with an optional suffix k, M, B (or G), T, "
                "e.g. '50k', '1.2M', '3B', '1e6'"
            )
        value = float(match.group(1).replace("_", "")) * _SUFFIXES[match.group(2).lower()]
    else:
        raise ValueError(
            f"size must be an int or a string like '50k', '1.2M', '3B'; got {type(size).__name__}"
        )
    count = round(value)
    if count < 1:
        raise ValueError(f"size must be at least 1 parameter, got {size!r}")
    return count


def format_size(count: int) -> str:
    """Short human form: 12345 -> '12.3k', 7_000_000_000 -> '7B'."""
    for suffix, scale in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("k", 10**3)):
        if abs(count) >= scale:
            return f"{count / scale:.3g}{suffix}"
    return str(count)


def width_grid(max_width: int = 32768) -> list[int]:
    """Candidate d_model values from 16: multiples of 8 (< 64), 16 (< 128), 32 (< 512), then 64."""
    widths: list[int] = []
    for start, stop, step in ((16, 64, 8), (64, 128, 16), (128, 512, 32), (512, max_width + 1, 64)):
        widths.extend(range(start, min(stop, max_width + 1), step))
    return widths


def default_head_dim(d_model: int) -> int:
    """Head dim for a width: 64 from d_model 512, 32 from 128, 16 below (8 if 16 does not divide).

    64 is the GPT-2/3 and Kaplan choice; narrower models use smaller heads so they still get several.
    Falls back to the largest power of two <= the cap that divides ``d_model`` (at least 2, for RoPE).
    """
    cap = 64 if d_model >= 512 else 32 if d_model >= 128 else 16
    head_dim = cap
    while head_dim > 2 and d_model % head_dim:
        head_dim //= 2
    if d_model % head_dim:
        raise ValueError(f"d_model={d_model} has no even head dim dividing it")
    return head_dim


@dataclass(frozen=True)
class ShapeChoice:
    n_layers: int
    d_model: int
    params: int  # the non-embedding count of the chosen shape

    def rel_error(self, target: int) -> float:
        return self.params / target - 1.0


def search_shape(
    target: int,
    count: Callable[[int, int], int],
    *,
    depths: Iterable[int] = DEFAULT_DEPTHS,
    widths: Sequence[int] | None = None,
    aspect_ratio: float = ASPECT_RATIO,
    size_weight: float = SIZE_WEIGHT,
    rel_tol: float = SIZING_REL_TOL,
) -> ShapeChoice:
    """Pick (n_layers, d_model) whose ``count(n_layers, d_model)`` is near ``target`` (see module doc).

    Minimises ``|log(aspect / aspect_ratio)| + size_weight * |log(params / target)|`` over candidates
    within ``rel_tol`` of the target (the closest in size if there are none). ``count`` must be
    non-decreasing in d_model at a fixed depth; ``widths`` must be sorted.
    """
    if target < 1:
        raise ValueError(f"target must be >= 1, got {target}")
    widths = width_grid() if widths is None else list(widths)
    depths = list(depths)
    if not widths or not depths:
        raise ValueError("search_shape needs at least one depth and one width")
    candidates: list[ShapeChoice] = []
    for n_layers in depths:
        # bisect for the first width whose count reaches the target; keep it and the one below
        index = bisect.bisect_left(
            range(len(widths)), True, key=lambda i: count(n_layers, widths[i]) >= target
        )
        for j in (index - 1, index):
            if 0 <= j < len(widths):
                candidates.append(ShapeChoice(n_layers, widths[j], count(n_layers, widths[j])))

    def size_error(choice: ShapeChoice) -> float:
        return abs(math.log(choice.params / target)) if choice.params > 0 else math.inf

    def score(choice: ShapeChoice) -> float:
        aspect_error = abs(math.log(choice.d_model / choice.n_layers / aspect_ratio))
        return aspect_error + size_weight * size_error(choice)

    close = [c for c in candidates if size_error(c) <= math.log1p(rel_tol)]
    if close:
        return min(close, key=score)
    return min(candidates, key=size_error)


def closest_value(target: int, count: Callable[[int], int], values: Iterable[int]) -> int:
    """The value whose ``count(value)`` is closest to ``target`` (relative, in log space): the fine
    trim an architecture applies to one secondary knob (e.g. MLP width) when the grid is too coarse."""
    return min(values, key=lambda value: abs(math.log(max(count(value), 1) / target)))


def search_then_trim(
    target: int,
    derive: Callable[[int, int], Any],
    *,
    depths: Sequence[int],
    widths: Sequence[int],
    trim_field: str | None,
    trim_values: Callable[[Any], Iterable[int]] | None,
    fixed: Mapping[str, Any],
    aspect_ratio: float = ASPECT_RATIO,
) -> Any:
    """The shared tail of every architecture's sizing: ``search_shape`` over (n_layers, d_model) with
    ``derive(n_layers, d_model)`` (a config with ``non_embedding_params()``), then the fine trim.

    When ``trim_field`` (the MLP width) is free and the grid offers a choice, the search runs at
    ``TRIM_REL_TOL`` so it can favour the aspect ratio, and a pick more than ``SIZING_REL_TOL`` off
    (small models, coarse width grid) moves that field to the closest of ``trim_values(config)``."""
    can_trim = (
        trim_field is not None
        and trim_values is not None
        and trim_field not in fixed
        and (len(depths) > 1 or len(widths) > 1)
    )
    choice = search_shape(
        target,
        lambda n_layers, d_model: derive(n_layers, d_model).non_embedding_params(),
        depths=depths,
        widths=widths,
        aspect_ratio=aspect_ratio,
        rel_tol=TRIM_REL_TOL if can_trim else SIZING_REL_TOL,
    )
    config = derive(choice.n_layers, choice.d_model)
    if can_trim and abs(choice.rel_error(target)) > SIZING_REL_TOL:
        value = closest_value(
            target,
            lambda f: dataclasses.replace(config, **{trim_field: f}).non_embedding_params(),
            trim_values(config),
        )
        config = dataclasses.replace(config, **{trim_field: value})
    return config


def size_by_search(
    target: int,
    overrides: Mapping[str, Any],
    derive: Callable[[int, int, dict[str, Any]], Any],
    *,
    trim_field: str | None = None,
    trim_values: Callable[[Any], Iterable[int]] | None = None,
    aspect_ratio: float = ASPECT_RATIO,
    min_layers: int = DEFAULT_DEPTHS.start,
) -> Any:
    """An architecture's whole sizing rule given its ``derive(n_layers, d_model, fixed)`` (the config its
    shape rules give that depth and width, with the ``fixed`` overrides held).

    Fixed ``n_layers`` / ``d_model`` overrides restrict the search to that depth / width (``min_layers``
    bounds the depths otherwise, e.g. Griffin's 3: one attention layer at least). Widths the overrides
    make invalid (``derive`` raises, e.g. a fixed head_dim that does not divide d_model) are skipped, so
    the search never stops on one; if none is left, the ``ValueError`` names the overrides and the last
    reason. Then ``search_then_trim`` (with ``trim_field`` / ``trim_values``, the MLP width, if any)."""
    fixed = dict(overrides)
    depths = (
        [fixed.pop("n_layers")] if "n_layers" in fixed else [d for d in DEFAULT_DEPTHS if d >= min_layers]
    )
    widths = [fixed.pop("d_model")] if "d_model" in fixed else width_grid()
    errors: list[str] = []

    def is_valid(width: int) -> bool:
        try:
            derive(depths[0], width, fixed)
        except (ValueError, TypeError, ZeroDivisionError) as error:
            errors.append(str(error))
            return False
        return True

    valid_widths = [w for w in widths if is_valid(w)]
    if not valid_widths:
        raise ValueError(f"no shape satisfies overrides {dict(overrides)}: {errors[-1] if errors else ''}")
    return search_then_trim(
        target,
        lambda n_layers, d_model: derive(n_layers, d_model, fixed),
        depths=depths,
        widths=valid_widths,
        trim_field=trim_field,
        trim_values=trim_values,
        fixed=fixed,
        aspect_ratio=aspect_ratio,
    )
