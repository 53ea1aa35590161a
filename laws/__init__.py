"""Scaling-law fitting for ceiling: power laws, Chinchilla approaches 1-3, bootstrap intervals,
leave-largest-out validation and architecture comparison. numpy/scipy only, so the dashboard and
`ceiling laws` import it without torch, ray or deepspeed.
"""

from .api import FitResult, GroupFits, Prediction, fit, fit_groups
from .auto import AUTO, AUTO_ORDER, choose_form, choose_forms
from .compare import Comparison, compare, compare_fits
from .data import Runs, as_runs, read_runs_csv
from .errors import FitDidNotConverge, LawInputError
from .forms import FORMS
from .health import DEGENERATE, HEALTHY, WEAK, FitHealth
from .power import PowerLawFit, fit_power_law
from .validation import backtest, leave_largest_out

__all__ = [
    "AUTO",
    "AUTO_ORDER",
    "DEGENERATE",
    "HEALTHY",
    "WEAK",
    "FitHealth",
    "backtest",
    "choose_form",
    "choose_forms",
    "FORMS",
    "Comparison",
    "FitDidNotConverge",
    "FitResult",
    "GroupFits",
    "LawInputError",
    "PowerLawFit",
    "Prediction",
    "Runs",
    "as_runs",
    "compare",
    "compare_fits",
    "fit",
    "fit_groups",
    "fit_power_law",
    "leave_largest_out",
    "read_runs_csv",
]
