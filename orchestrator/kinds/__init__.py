"""Kinds of study: what one provides (``kind``), the built-in ones, the LM ladder (``ladder``) and the
recall study (``recall``), and the registry that holds them (``registry``).

Everything that depends on what kind a sweep or a trial is asks here: ``plan_trials(spec, vocab)``,
``kind_for_spec(spec)``, ``kind_of(trial_config)``. See orchestrator/README.md for adding a kind.
"""

from orchestrator.kinds.kind import StudyKind
from orchestrator.kinds.registry import (
    kind_for_spec,
    kind_named,
    kind_of,
    kinds,
    plan_trials,
    register,
    registered,
    unregister,
)

__all__ = [
    "StudyKind",
    "kind_for_spec",
    "kind_named",
    "kind_of",
    "kinds",
    "plan_trials",
    "register",
    "registered",
    "unregister",
]
