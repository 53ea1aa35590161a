"""A planned trial: its typed config plus what planning measured (parameters, FLOPs, state size).

Everything a stage needs to know about a trial it reads here by attribute; ``row()`` gives the
store's ``trials`` columns, with the config in its stored form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orchestrator.trial.config import TrialConfig
from orchestrator.trial.frozen import FrozenMap


class PlanError(ValueError):
    """A spec that validates but cannot be turned into trials (e.g. a budget below one batch)."""


@dataclass(frozen=True, kw_only=True)
class PlannedTrial:
    config: TrialConfig
    accounting: FrozenMap  # models.describe(): params (total, embedding, non-embedding), FLOPs/token, state
    lr: float  # the lr it trains at; a tuned trial's nominal (spec) lr until its choice is made

    id: str = field(init=False, default="")  # the config's id, hashed once: ids are compared often

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", self.config.id)

    @property
    def arch(self) -> str:
        return self.config.model.arch

    @property
    def label(self) -> str:
        return self.config.model.label

    @property
    def size_target(self) -> float:
        return self.config.model.size_target

    @property
    def seed(self) -> int:
        return self.config.seed

    @property
    def tokens(self) -> int:
        return self.config.tokens

    @property
    def steps(self) -> int:
        return self.config.steps

    @property
    def role(self) -> str:
        return self.config.role

    @property
    def parent_id(self) -> str | None:
        """A branch's trunk."""
        return self.config.branch.parent if self.config.branch else None

    @property
    def tuned(self) -> bool:
        """Whether the lr comes from tuning (chosen when the trial starts; ``lr`` is the spec's nominal one)."""
        return self.config.training.tuned

    @property
    def flops_exact(self) -> float:
        return float(self.accounting["flops_per_token"]) * self.tokens

    @property
    def flops_to_run(self) -> float:
        """FLOPs this trial itself spends: a branch runs only its cooldown (the trunk ran the prefix)."""
        branch = self.config.branch
        if branch is None:
            return self.flops_exact
        return self.flops_exact * (self.steps - branch.start_step) / self.steps

    @property
    def flops_6nd(self) -> float:
        return 6.0 * self.accounting["non_embedding_params"] * self.tokens

    def row(self) -> dict[str, Any]:
        """Column values for the store's ``trials`` table."""
        acc = self.accounting
        return {
            "id": self.id,
            "arch": self.arch,
            "label": self.label,
            "size_target": self.size_target,
            "params_total": acc["total_params"],
            "params_embedding": acc["embedding_params"],
            "params_non_embedding": acc["non_embedding_params"],
            "state_size": acc["state_size"],
            "seq_len": acc["seq_len"],
            "tokens": self.tokens,
            "steps_total": self.steps,
            "flops_6nd": self.flops_6nd,
            "flops_exact": self.flops_exact,
            "seed": self.seed,
            "lr": self.lr,
            "config": self.config.to_dict(),
            "role": self.role,
            "parent_id": self.parent_id,
        }
