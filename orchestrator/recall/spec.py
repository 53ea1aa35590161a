"""The ``task:`` block of a sweep file: a recall study instead of a language-model ladder.

    task:
      name: mqar                       # mqar | copy
      vocab_size: 8192
      train: [{seq_len: 64, kv_pairs: 4}, {seq_len: 128, kv_pairs: 8}]
      test:  [{seq_len: 64, kv_pairs: 4}, {seq_len: 256, kv_pairs: 16}]
      widths: [64, 128]                # d_model of each model (Zoology: 2 layers)
      lrs: [1.0e-3, 3.0e-3]            # every width is trained at each; the best is reported
      steps: 400
      batch_size: 64                   # sequences per optimizer step

Every setting is checked here, so an impossible one (more kv pairs than fit, a vocabulary without
enough distinct keys) is a spec error naming its field, before anything is planned or written.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.recall.generators import (
    CopySetting,
    MqarSetting,
    copy_problems,
    copy_vocab_size,
    mqar_problems,
)

TASK_NAMES = ("mqar", "copy")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqarSettingSpec(_Strict):
    seq_len: int = Field(ge=8, le=65_536)
    kv_pairs: int = Field(ge=1)

    @model_validator(mode="after")
    def _fits(self) -> MqarSettingSpec:
        # vocabulary-independent checks; the vocabulary ones need the task and run there
        problems = [p for p in mqar_problems(1 << 30, self.seq_len, self.kv_pairs)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def setting(self) -> MqarSetting:
        return MqarSetting(self.seq_len, self.kv_pairs)


class CopySettingSpec(_Strict):
    length: int = Field(ge=1, le=32_768, description="characters in the string to copy")

    def setting(self) -> CopySetting:
        return CopySetting(self.length)


class _TaskBase(_Strict):
    widths: list[Annotated[int, Field(ge=8, le=65_536)]] = Field(
        default_factory=lambda: [64, 128], min_length=1
    )
    n_layers: int = Field(default=2, ge=1, le=64)
    lrs: list[Annotated[float, Field(gt=0, lt=10)]] = Field(
        default_factory=lambda: [1e-3, 3e-3], min_length=1
    )
    steps: int = Field(default=400, ge=4)
    batch_size: int = Field(default=64, ge=1, description="sequences per optimizer step")
    train_examples: int | None = Field(
        default=None,
        ge=1,
        description="distinct training sequences per train setting (a fixed set, revisited); "
        "default: a fresh batch every step",
    )
    test_examples: int = Field(default=256, ge=1, le=1_000_000, description="sequences per test setting")

    @field_validator("widths", "lrs")
    @classmethod
    def _distinct(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError(f"duplicates in {values}")
        return values

    # filled in by subclasses
    def train_settings(self) -> list[Any]:
        return [s.setting() for s in self.train]  # type: ignore[attr-defined]

    def test_settings(self) -> list[Any]:
        return [s.setting() for s in (self.test or self.train)]  # type: ignore[attr-defined]

    def hardest(self) -> Any:
        return max(self.test_settings(), key=lambda s: s.hardness)

    def max_input_len(self) -> int:
        return max(s.input_len for s in self.train_settings() + self.test_settings())

    def _check_pool(self) -> None:
        if self.train_examples is not None:
            longest = max(s.input_len for s in self.train_settings())
            if self.train_examples * longest > 200_000_000:
                raise ValueError(
                    f"train_examples: {self.train_examples} x {longest} tokens is too large a fixed set to "
                    "hold in memory; lower it, or leave it out for a fresh batch every step"
                )


class MqarTaskSpec(_TaskBase):
    """Multi-query associative recall (Zoology)."""

    name: Literal["mqar"]
    vocab_size: int = Field(default=8192, ge=8, le=1_000_000)
    train: list[MqarSettingSpec] = Field(
        default_factory=lambda: [
            MqarSettingSpec(seq_len=64, kv_pairs=4),
            MqarSettingSpec(seq_len=128, kv_pairs=8),
        ],
        min_length=1,
    )
    test: list[MqarSettingSpec] | None = Field(
        default=None, min_length=1, description="default: the train settings"
    )
    random_fillers: bool = True
    power_a: float = Field(default=0.01, gt=0, le=1, description="gap power law; 1 = uniform gaps")

    @model_validator(mode="after")
    def _vocab_fits(self) -> MqarTaskSpec:
        problems = []
        for part in ("train", "test"):
            for index, entry in enumerate(getattr(self, part) or []):
                for problem in mqar_problems(self.vocab_size, entry.seq_len, entry.kv_pairs):
                    if problem.startswith("vocab_size"):
                        problems.append(f"{problem} (needed by task.{part}[{index}])")
        if problems:
            raise ValueError("; ".join(dict.fromkeys(problems)))
        self._check_pool()
        return self

    def vocab(self) -> int:
        return self.vocab_size

    def generator_settings(self) -> dict[str, Any]:
        return {"vocab_size": self.vocab_size, "power_a": self.power_a, "random_fillers": self.random_fillers}


class CopyTaskSpec(_TaskBase):
    """Copy a string: ``<bos> s <sep> s``; train on short strings, test on longer ones."""

    name: Literal["copy"]
    alphabet: int = Field(default=16, ge=2, le=60_000)
    train: list[CopySettingSpec] = Field(default_factory=lambda: [CopySettingSpec(length=16)], min_length=1)
    test: list[CopySettingSpec] | None = Field(
        default=None, min_length=1, description="default: the train settings"
    )

    @model_validator(mode="after")
    def _ok(self) -> CopyTaskSpec:
        for part in ("train", "test"):
            for entry in getattr(self, part) or []:
                problems = copy_problems(self.alphabet, entry.length)
                if problems:
                    raise ValueError("; ".join(problems))
        self._check_pool()
        return self

    def vocab(self) -> int:
        return copy_vocab_size(self.alphabet)

    def generator_settings(self) -> dict[str, Any]:
        return {"alphabet": self.alphabet}


TaskSpec = Annotated[MqarTaskSpec | CopyTaskSpec, Field(discriminator="name")]


def task_shorthand(value: Any) -> Any:
    """``task: mqar`` means ``task: {name: mqar}`` with every default."""
    if isinstance(value, str):
        if value not in TASK_NAMES:
            raise ValueError(f"unknown task {value!r}; known: {', '.join(TASK_NAMES)}")
        return {"name": value}
    return value


def check_recall_sweep(spec: Any) -> None:
    """Whole-sweep rules of a recall study (``spec.task`` set); raises ValueError naming the field."""
    task = spec.task
    if spec.sizes is not None:
        raise ValueError(
            f"sizes: a recall study (task: {task.name}) sizes its models by task.widths; remove sizes"
        )
    if spec.budgets is not None:
        raise ValueError(
            f"budgets: a recall study (task: {task.name}) trains for task.steps of task.batch_size "
            "sequences; remove budgets"
        )
    if "data" in spec.model_fields_set:
        raise ValueError(
            f"data: a recall study (task: {task.name}) generates its own data; remove data "
            "(sequence lengths and vocabulary are task settings)"
        )
    for name, instead in (("lr", "task.lrs"), ("batch_tokens", "task.batch_size")):
        if name in spec.training.model_fields_set:
            raise ValueError(
                f"training.{name}: a recall study uses {instead} instead; remove training.{name}"
            )
    for index, entry in enumerate(spec.architectures):
        if "d_model" in entry.overrides:
            raise ValueError(
                f"architectures[{index}].overrides.d_model: a recall study sets d_model from task.widths; "
                "remove it"
            )
    workers = spec.resources.workers_per_trial
    if task.batch_size % workers:
        raise ValueError(
            f"task.batch_size ({task.batch_size}) must be a multiple of resources.workers_per_trial ({workers})"
        )
    micro = spec.training.micro_batch_size
    if micro is not None and (task.batch_size // workers) % micro:
        raise ValueError(
            f"training.micro_batch_size ({micro}) must divide the sequences per worker per step "
            f"({task.batch_size // workers})"
        )
