"""The sweep file: YAML -> a validated, frozen pydantic model.

Every model forbids unknown fields, so a typo (``lerning_rate``) is an error rather than a silently
ignored setting. :func:`load_spec` turns any problem into a :class:`SpecError` whose lines each name
the offending path (``architectures[2]``) and say how to fix it; nothing is written before a spec
validates.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.recall.spec import TASK_NAMES, TaskSpec, task_shorthand
from orchestrator.units import parse_count

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


MAX_SEEDS = 1000  # replicates per point; real studies use 1-5


class SpecError(ValueError):
    """A sweep file that cannot be used; ``problems`` holds one line per bad field."""

    def __init__(self, problems: list[str], source: str = "sweep file"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source} is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _count(value: Any, what: str) -> float:
    return parse_count(value, what=what)


def _count_type(what: str) -> Any:
    """A float field that accepts '50k' / '1.2M' / '1e15'; used per list element so errors carry the index."""
    return Annotated[float, BeforeValidator(lambda value: _count(value, what))]


SizeCount = _count_type("size (non-embedding parameters)")
TokenCount = _count_type("token budget")
RatioCount = _count_type("tokens per parameter")
FlopCount = _count_type("isoflop budget (FLOPs)")


class ArchitectureEntry(_Strict):
    """One architecture, optionally with config overrides (``{name: gla, overrides: {chunk_size: 32}}``)."""

    name: str
    overrides: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        import models  # lazy: the registry imports torch

        known = models.available()
        if name not in known:
            raise ValueError(f"unknown architecture {name!r}; known: {', '.join(known)}")
        return name

    @property
    def display_name(self) -> str:
        return self.label or self.name


class IsoFlopBudgets(_Strict):
    """isoFLOP design: for each compute budget, ``points`` sizes log-spaced over the sizes' range."""

    budgets: list[FlopCount] = Field(min_length=1)
    points: int = Field(default=5, ge=2, le=50)


class Budgets(_Strict):
    """Exactly one of: explicit token counts, tokens-per-parameter ratios, or isoFLOP budgets."""

    tokens: list[TokenCount] | None = Field(default=None, min_length=1)
    tokens_per_param: list[RatioCount] | None = Field(default=None, min_length=1)
    isoflop: IsoFlopBudgets | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Budgets:
        given = [k for k in ("tokens", "tokens_per_param", "isoflop") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of tokens (e.g. [1M, 2M]), tokens_per_param (e.g. [20]) or "
                f"isoflop ({{budgets: [1e13], points: 5}}); got {given or 'none'}"
            )
        return self


class DataSpec(_Strict):
    corpus: str = Field(
        default="stdlib", description="stdlib | path to text file/folder | .bin | hf:NAME[:CONFIG]"
    )
    tokenizer: Literal["byte", "bpe"] = "byte"
    bpe_vocab_size: int = Field(default=4096, ge=260, le=65535)
    seq_len: int = Field(default=256, ge=8, le=1_048_576)
    val_tokens: int = Field(default=131_072, ge=1024)
    val_fraction: float = Field(default=0.02, gt=0, lt=0.5)
    text_field: str = "text"


class LrRule(_Strict):
    """``lr = base * (params / ref_params) ** exponent``: a per-size learning rate."""

    base: float = Field(gt=0, lt=10)
    ref_params: float = 1e6
    exponent: float = Field(default=-0.25, ge=-2, le=2)

    @field_validator("ref_params", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return _count(value, "ref_params")


class TrainingSpec(_Strict):
    batch_tokens: int = Field(default=8192, ge=8)
    micro_batch_size: int | None = Field(
        default=None, ge=1, description="sequences per worker per micro step"
    )
    lr: float | LrRule = 3e-3
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1)
    warmup_frac: float = Field(default=0.05, ge=0, lt=1)
    schedule: Literal["wsd", "cosine", "constant"] = "wsd"
    cooldown_frac: float = Field(default=0.2, ge=0, le=1)
    branches: bool = Field(
        default=False,
        description="wsd only: one constant-LR trunk per size and seed; each token budget is a cooldown branch "
        "from the trunk's checkpoint (Hagele et al. 2024), instead of an independent run",
    )
    weight_decay: float = Field(default=0.1, ge=0)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.95, ge=0, lt=1)
    precision: Literal["bf16", "fp32"] = "bf16"
    grad_clip: float = Field(default=1.0, ge=0)
    eval_interval: int = Field(default=50, ge=1, description="optimizer steps between evaluations")
    checkpoint_interval: int | None = Field(default=None, ge=1, description="steps; default = eval_interval")
    log_interval: int = Field(default=10, ge=1)
    max_loss: float | None = Field(
        default=None, gt=0, description="a training loss above this (or NaN/inf) stops the trial as diverged"
    )

    @field_validator("batch_tokens", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        return int(_count(value, "batch_tokens")) if isinstance(value, str) else value

    @field_validator("lr", mode="before")
    @classmethod
    def _lr(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not 0 < value < 10:
            raise ValueError(f"learning rate must be in (0, 10), got {value}")
        return value


class TuningSpec(_Strict):
    """A short learning-rate search per architecture and size before the full-budget trials.

    Each (architecture, tuned size) trains once per candidate (``lrs`` x ``beta2s``) for ``tokens``
    tokens; the lowest final validation loss wins (a diverged or failed candidate counts as worst).
    ``sizes: all`` tunes every size; ``smallest:K`` tunes the K smallest and, with ``rule: fit``,
    extrapolates a per-architecture power law lr(params) fitted on them to the larger sizes.
    """

    lrs: list[float] = Field(min_length=1)
    beta2s: list[float] | None = Field(default=None, min_length=1)
    tokens: TokenCount
    sizes: str = Field(default="all", description="all | smallest:K")
    rule: Literal["none", "fit"] = "none"

    @field_validator("lrs")
    @classmethod
    def _lrs(cls, values: list[float]) -> list[float]:
        bad = [v for v in values if not 0 < v < 10]
        if bad:
            raise ValueError(f"learning rates must be in (0, 10), got {bad}")
        return values

    @field_validator("beta2s")
    @classmethod
    def _beta2s(cls, values: list[float] | None) -> list[float] | None:
        if values is not None and any(not 0 <= v < 1 for v in values):
            raise ValueError(f"beta2 values must be in [0, 1), got {values}")
        return values

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, value: str) -> str:
        if value == "all" or re.fullmatch(r"smallest:[1-9][0-9]*", value):
            return value
        raise ValueError(f"give 'all' or 'smallest:K' (e.g. smallest:2), got {value!r}")

    @property
    def smallest(self) -> int | None:
        """K of ``smallest:K``; None for ``all``."""
        return None if self.sizes == "all" else int(self.sizes.split(":")[1])


class ResourcesSpec(_Strict):
    workers_per_trial: int = Field(default=1, ge=1, le=1024)
    cpus_per_worker: float = Field(default=1, gt=0)
    gpus_per_worker: float = Field(default=0, ge=0)
    max_concurrent_trials: int = Field(default=2, ge=1)
    retries: int = Field(default=2, ge=0, le=100)
    placement: Literal["pack", "spread", "strict_pack", "strict_spread"] = Field(
        default="pack", description="how a trial's workers are placed on nodes (Ray placement-group strategy)"
    )


class DeepSpeedSpec(_Strict):
    """``preset`` names a file of DeepSpeed blocks (orchestrator/presets/deepspeed, copies in
    clusters/deepspeed); it merges under an explicit ``zero_stage`` and ``overrides`` (explicit wins)."""

    zero_stage: Literal[0, 1, 2, 3] = 0
    preset: str | None = Field(default=None, description="e.g. zero2-bf16; see clusters/README.md")
    overrides: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _stage_from_preset(cls, data: Any) -> Any:
        # No explicit zero_stage: take the preset's, so the stored spec (and the trial id) says the stage run.
        from orchestrator.presets import PresetError, preset_zero_stage

        if isinstance(data, dict) and isinstance(data.get("preset"), str) and "zero_stage" not in data:
            try:
                return {**data, "zero_stage": preset_zero_stage(data["preset"])}
            except PresetError:
                return data  # the field validator below reports the unknown name with its path
        return data

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        from orchestrator.presets import deepspeed_preset

        if name is not None:
            deepspeed_preset(name)  # PresetError (a ValueError) lists the known presets
        return name


class EfficiencySpec(_Strict):
    """The efficiency study (``efficiency:``): measured on each trained model of an LM ladder, at its end.

    Decode: prefill ``contexts`` tokens, then generate ``decode_tokens`` through the recurrent state or
    the KV cache, at each batch of ``batches``; tokens/s and bytes of state. Extrapolation: validation
    loss at each factor of ``extrapolation`` x data.seq_len. Prefill: forward time at ``prefill`` lengths
    (default: the contexts). See orchestrator/kinds/efficiency.py.
    """

    contexts: list[int] = Field(default_factory=lambda: [512, 2048, 8192, 32768], min_length=1)
    batches: list[int] = Field(default_factory=lambda: [1, 8], min_length=1)
    decode_tokens: int = Field(default=32, ge=1, le=4096)
    max_batch_tokens: int = Field(
        default=65_536,
        ge=1,
        description="a batch above 1 is measured only at contexts with batch x L <= this (its prefill "
        "costs batch x L tokens); batch 1 at every context",
    )
    extrapolation: list[int] = Field(default_factory=lambda: [1, 2, 4, 8], min_length=1)
    extrapolation_tokens: int = Field(
        default=65_536, ge=64, description="validation tokens read per extrapolation length (at most)"
    )
    prefill: list[int] | None = Field(
        default=None,
        min_length=1,
        description="lengths to time a forward pass at (median of repeats); default: the decode's own "
        "prefill at each context, timed once",
    )
    train_lengths: list[int] | None = Field(
        default=None,
        min_length=1,
        description="lengths to time a training step at (forward + backward of the loss, batch 1, a model "
        "of the trial's shape); default: not measured",
    )
    repeats: int = Field(default=3, ge=1, le=100, description="timed repeats; the median is kept")
    clock: Literal["wall", "cpu"] = Field(
        default="wall",
        description="what times a decode step: wall (elapsed seconds; what a user waits) or cpu (the "
        "measuring thread's CPU seconds: steady on a shared CPU machine, where other processes' load bends "
        "wall-clock readings; right only while the trial computes on that one thread, cpus_per_worker: 1)",
    )

    @field_validator("contexts", "batches", "extrapolation", "prefill", "train_lengths")
    @classmethod
    def _positive_sorted(cls, values: list[int] | None) -> list[int] | None:
        if values is None:
            return values
        if any(v < 1 for v in values):
            raise ValueError(f"values must be >= 1, got {values}")
        if len(set(values)) != len(values):
            raise ValueError(f"duplicates in {values}")
        return sorted(values)

    @field_validator("extrapolation")
    @classmethod
    def _has_training_length(cls, values: list[int]) -> list[int]:
        if 1 not in values:
            raise ValueError(
                f"include 1 (the training length: the loss the others are read against), got {values}"
            )
        return values

    @field_validator("contexts", "prefill", "train_lengths")
    @classmethod
    def _context_bound(cls, values: list[int] | None) -> list[int] | None:
        if values is not None and max(values) > 4_194_304:
            raise ValueError(f"context lengths above 4M tokens are not measured, got {max(values)}")
        return values


class SweepSpec(_Strict):
    name: str
    description: str = ""
    architectures: list[ArchitectureEntry] = Field(min_length=1)
    # sizes and budgets: required for a language-model study, absent from a recall study (task:);
    # ``_study_kind`` reports a missing one with its path, like any required field.
    sizes: list[SizeCount] | None = Field(default=None, min_length=1)
    budgets: Budgets | None = None
    task: TaskSpec | None = Field(
        default=None,
        description="a recall study (mqar | copy) instead of a language-model ladder; see orchestrator/recall",
    )
    efficiency: EfficiencySpec | None = Field(
        default=None,
        description="measure decode cost, state bytes, prefill time and length extrapolation of every "
        "trained model (an efficiency study); see EfficiencySpec",
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    data: DataSpec = Field(default_factory=DataSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    deepspeed: DeepSpeedSpec = Field(default_factory=DeepSpeedSpec)
    tuning: TuningSpec | None = Field(
        default=None, description="a short learning-rate search per architecture and size; see TuningSpec"
    )
    storage: str | None = Field(
        default=None,
        description="where checkpoints go: a folder, or a URI pyarrow.fs understands (s3://, gs://, hdfs://, "
        "file://) shared by every node; default <workdir>/checkpoints",
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        # The name becomes a folder under the work folder: it must not escape it.
        if not NAME_PATTERN.match(name):
            raise ValueError(
                f"{name!r} is not a valid sweep name; use 1-64 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit"
            )
        return name

    @field_validator("task", mode="before")
    @classmethod
    def _task_shorthand(cls, value: Any) -> Any:
        return task_shorthand(value)

    @model_validator(mode="wrap")
    @classmethod
    def _study_kind(cls, data: Any, handler: Any) -> SweepSpec:
        missing = []
        if isinstance(data, dict) and data.get("task") is None:
            missing = [name for name in ("sizes", "budgets") if data.get(name) is None]
        try:
            spec = handler(data)
        except ValidationError as exc:
            if not missing:
                raise
            raise _with_missing(exc.errors(), missing, data) from None
        if missing:
            raise _with_missing([], missing, data)
        return spec

    @field_validator("architectures", mode="before")
    @classmethod
    def _names_to_entries(cls, values: Any) -> Any:
        if not isinstance(values, list):
            return values
        return [{"name": v} if isinstance(v, str) else v for v in values]

    @field_validator("seeds", mode="before")
    @classmethod
    def _seed_count(cls, value: Any) -> Any:
        # ``seeds: 3`` means three replicates 0, 1, 2.
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise ValueError(f"seeds must be a count >= 1 or a list of seeds, got {value}")
            if value > MAX_SEEDS:
                # checked before expanding: ``seeds: 1000000000`` must not build a billion-element list
                raise ValueError(f"seeds: {value} replicates is too many; give at most {MAX_SEEDS}")
            return list(range(value))
        if not isinstance(value, list):
            raise ValueError(f"give a count (seeds: 3) or a list of seeds (seeds: [0, 1]), not {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        labels = [a.display_name for a in self.architectures]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(f"architectures: {dupes} listed twice; give each variant a distinct 'label'")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: duplicates in {self.seeds}")
        if any(s < 0 for s in self.seeds):
            raise ValueError(f"seeds must be >= 0, got {self.seeds}")
        if self.task is not None and self.tuning is not None:
            raise ValueError(
                "tuning: only for language-model studies; a recall study (task:) already sweeps lrs"
            )
        if self.task is not None and self.efficiency is not None:
            raise ValueError(
                "efficiency: only for language-model studies (it measures models trained on a corpus); "
                "remove it from a recall study"
            )
        if self.task is not None and self.training.branches:
            raise ValueError(
                "training.branches: only for language-model studies; remove it from a recall study"
            )
        if self.training.branches and self.training.schedule != "wsd":
            raise ValueError(
                f"training.branches needs training.schedule: wsd (cooldowns branch from a constant-LR trunk); "
                f"got schedule {self.training.schedule!r}"
            )
        if self.training.branches and not 0 < self.training.cooldown_frac < 1:
            raise ValueError(
                "training.branches needs 0 < training.cooldown_frac < 1 (the cooldown of each budget)"
            )
        if self.tuning is not None:
            k = self.tuning.smallest
            if k is not None and self.tuning.rule != "fit" and k < len(self.sizes or []):
                raise ValueError(
                    f"tuning.sizes: {self.tuning.sizes} leaves larger sizes without a learning rate; "
                    "add tuning.rule: fit (extrapolate a fitted lr(params) rule) or use sizes: all"
                )
            if self.tuning.rule == "fit" and k is not None and k < 2:
                raise ValueError(
                    "tuning.rule: fit needs at least two tuned sizes (tuning.sizes: smallest:2 or more)"
                )
            if self.tuning.rule == "fit" and len(set(self.sizes or [])) < 2:
                raise ValueError("tuning.rule: fit needs at least two different sizes")
            if self.budgets is not None and self.budgets.isoflop is not None:
                raise ValueError("tuning: not available with budgets.isoflop yet; use budgets.tokens")
        if self.task is not None:
            from orchestrator.recall.spec import check_recall_sweep

            check_recall_sweep(self)
            return self
        seq_len, workers = self.data.seq_len, self.resources.workers_per_trial
        if self.training.batch_tokens % (seq_len * workers):
            raise ValueError(
                f"training.batch_tokens ({self.training.batch_tokens}) must be a multiple of "
                f"data.seq_len x resources.workers_per_trial ({seq_len} x {workers}); "
                f"try {max(1, round(self.training.batch_tokens / (seq_len * workers))) * seq_len * workers}"
            )
        if self.training.micro_batch_size is not None:
            per_worker = self.training.batch_tokens // (seq_len * workers)
            if per_worker % self.training.micro_batch_size:
                raise ValueError(
                    f"training.micro_batch_size ({self.training.micro_batch_size}) must divide the "
                    f"sequences per worker per step ({per_worker})"
                )
        return self


def _with_missing(errors: list[dict[str, Any]], missing: list[str], data: Any) -> ValidationError:
    """``errors`` plus a 'missing' error for each of ``missing`` (fields required only for LM studies)."""
    details: list[Any] = [
        {
            "type": e["type"],
            "loc": e["loc"],
            "input": e.get("input"),
            **({"ctx": e["ctx"]} if "ctx" in e else {}),
        }
        for e in errors
    ]
    details += [{"type": "missing", "loc": (name,), "input": data} for name in missing]
    return ValidationError.from_exception_data("SweepSpec", details)


def format_loc(loc: tuple[Any, ...], *, user_key_last: bool = False) -> str:
    """``('architectures', 2, 'name')`` -> ``architectures[2].name``, minus pydantic's internal tags
    (public: every user-facing file's errors are worded alike, e.g. cluster files').

    ``user_key_last``: the last part is a key the user wrote (an unknown field), kept verbatim even
    if it happens to look like one of pydantic's tags (``dict[``).
    """
    out = ""
    for index, part in enumerate(loc):
        if user_key_last and index == len(loc) - 1:
            out += ("." if out else "") + str(part)
        elif isinstance(part, int):
            out += f"[{part}]"
        elif out == "task" and part in TASK_NAMES:
            continue  # the tag pydantic adds inside the task union (task.mqar.train -> task.train)
        elif part in ("function-after", "function-before") or str(part).startswith(
            ("function-", "list[", "dict[")
        ):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def error_hint(error: dict[str, Any]) -> str:
    """A pydantic error in words, with the fix where there is an obvious one."""
    kind = error.get("type", "")
    msg = error.get("msg", "").removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown field; remove it or check its spelling (see `ceiling run --help` and examples/)"
    if kind == "missing":
        return "required field is missing; add it"
    if kind in ("too_short",):
        return "must not be empty; list at least one value"
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        return f"{msg} (got {_short_repr(error.get('input'))})"
    return msg


def _short_repr(value: Any) -> str:
    """A bounded repr: YAML aliases can make a 1 kB input print as gigabytes, so cut it early."""
    import reprlib

    shortener = reprlib.Repr()
    shortener.maxlevel, shortener.maxlist, shortener.maxdict, shortener.maxstring = 3, 6, 6, 80
    shortener.maxlong, shortener.maxother = 40, 80
    return shortener.repr(value)


def validation_problems(exc: Any) -> list[tuple[tuple, str, str]]:
    """(location, its printed path, the message) of each error of a pydantic ValidationError on a spec:
    what the CLI prints (exit code 2) and what the HTTP API returns (422) are built from these."""
    problems = []
    for error in exc.errors():
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        # Whole-spec checks carry no location: their message already names the fields.
        where = format_loc(loc, user_key_last=error["type"] == "extra_forbidden")
        problems.append((loc, where, f"{where}: {error_hint(error)}" if loc else error_hint(error)))
    return problems


def parse_spec(data: Any, source: str = "sweep file") -> SweepSpec:
    """Validate an already-parsed mapping; raises :class:`SpecError` with one line per problem."""
    if not isinstance(data, dict):
        raise SpecError(
            [
                f"(top level): expected a mapping of fields (name:, architectures:, ...), got {type(data).__name__}"
            ],
            source,
        )
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError([message for _, _, message in validation_problems(exc)], source) from None


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file (safe-loaded)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(
            [f"file not found: {path}; pass the path of a sweep YAML such as examples/smoke.yaml"], str(path)
        )
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SpecError(
            [f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); save the file as UTF-8"],
            str(path),
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(
            [f"YAML syntax error at {where}: {problem}; fix the indentation or quoting there"], str(path)
        ) from None
    if _exceeds(data, _MAX_VALUES):
        raise SpecError(
            [
                f"the file expands to more than {_MAX_VALUES} values (YAML aliases?); a sweep file needs far fewer"
            ],
            str(path),
        )
    return parse_spec(data, str(path))


_MAX_VALUES = 100_000  # a real sweep has hundreds; aliases nested 6 deep can reach millions from 400 bytes


def _exceeds(data: Any, limit: int) -> bool:
    """Whether the alias-expanded tree holds more than ``limit`` values; stops counting at the limit."""
    stack, seen = [data], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def spec_to_dict(spec: SweepSpec) -> dict[str, Any]:
    """A JSON-safe dict of the validated spec (stored with the sweep so `ceiling resume` needs no file)."""
    return spec.model_dump(mode="json")
