"""A recall study's trials: architecture x width x learning rate x seed (Zoology's protocol).

Each width is trained at every learning rate of ``task.lrs`` (``ceiling recall`` reports the best per
architecture and width). A model is ``models.build(arch, n_layers=task.n_layers, d_model=width,
**overrides)`` with the vocabulary of the task; the other knobs follow the architecture's own sizing rule
at a nominal Transformer-like size of ``12 * n_layers * width**2``. The recurrent state size the analysis
plots is the model's own accounting, ``state_size(seq_len)``, at every test setting's length.
"""

from __future__ import annotations

from typing import Any

from orchestrator.recall.generators import CopySetting, MqarSetting
from orchestrator.trial import PlanError, PlannedTrial, RecallPart, RecallTaskSettings, TrialConfig, freeze
from orchestrator.trial.build import planned_trial, training_part

MAX_MICRO_BATCH_TOKENS = 8192


def nominal_size(n_layers: int, width: int) -> int:
    return 12 * n_layers * width * width


def settings_of(config: TrialConfig) -> tuple[list[Any], list[Any]]:
    """(train settings, test settings) of a recall trial."""
    return settings_from_config(config.task.task.to_dict())


def settings_from_config(task: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(train settings, test settings) of a recall task in its stored form (a config's ``task``)."""

    def build(entries: list[dict[str, Any]]) -> list[Any]:
        if task["name"] == "mqar":
            return [MqarSetting(e["seq_len"], e["kv_pairs"]) for e in entries]
        return [CopySetting(e["length"]) for e in entries]

    return build(task["train"]), build(task["test"] or task["train"])


def train_setting_index(step: int, count: int) -> int:
    """Which train setting optimizer step ``step`` draws from: they take turns, so every step's batch has
    one shape and the mixture is even over any ``count`` consecutive steps."""
    return step % count


def plan_recall_trials(spec: Any, vocab_size: int = 0) -> list[PlannedTrial]:
    """All trials of a recall study, ordered (architecture, width, lr, seed). ``vocab_size`` (the
    corpus's) is unused: the task has its own vocabulary."""
    import torch

    import models

    task = spec.task
    training = spec.training
    vocab = task.vocab()
    train_settings, test_settings = task.train_settings(), task.test_settings()
    max_len = task.max_input_len()
    tokens = sum(
        task.batch_size * train_settings[train_setting_index(step, len(train_settings))].input_len
        for step in range(task.steps)
    )
    warmup = round(training.warmup_frac * task.steps)
    cooldown = round(training.cooldown_frac * task.steps) if training.schedule == "wsd" else 0
    task_config = task.model_dump(mode="json", exclude={"widths", "lrs"})
    task_config["test"] = task_config["test"] or task_config["train"]
    settings = RecallTaskSettings.from_dict(task_config)
    hardest = task.hardest().name
    trials: list[PlannedTrial] = []
    for arch_index, arch in enumerate(spec.architectures):
        for width in task.widths:
            shape = {"n_layers": task.n_layers, **arch.overrides, "d_model": width}
            try:
                acc = models.describe(
                    arch.name,
                    size=nominal_size(shape["n_layers"], width),
                    vocab_size=vocab,
                    seq_len=max_len,
                    **shape,
                )
                with torch.device("meta"):
                    model = models.from_config(arch.name, acc["config"])
                state_sizes = {s.name: int(model.state_size(s.input_len)) for s in test_settings}
            except (ValueError, TypeError) as exc:
                raise PlanError(
                    f"architectures[{arch_index}] ({arch.name}) at task.widths {width}: {exc}"
                ) from None
            part = RecallPart(task=settings, width=width, state_sizes=freeze(state_sizes), hardest=hardest)
            for lr in task.lrs:
                for seed in spec.seeds:
                    trials.append(
                        planned_trial(
                            spec,
                            arch=arch,
                            accounting=acc,
                            size_target=float(acc["non_embedding_params"]),
                            task=part,
                            training=training_part(
                                spec,
                                lr=float(lr),
                                sequences_per_step=task.batch_size,
                                warmup_steps=warmup,
                                cooldown_steps=cooldown,
                                batch_in_tokens=False,
                            ),
                            seed=seed,
                            steps=task.steps,
                            tokens=tokens,
                            nominal_lr=float(lr),
                            with_data=False,
                        )
                    )
    return trials


def recall_micro_batch_size(config: TrialConfig, workers: int, requested: int | None) -> int:
    """Sequences per worker per micro step for a recall trial: the spec's, else the largest divisor of the
    per-worker batch whose longest train sequence fits 8192 tokens."""
    per_worker = config.training.sequences_per_step // workers
    if requested:
        return requested
    train, _ = settings_of(config)
    longest = max(s.input_len for s in train)
    cap = max(1, MAX_MICRO_BATCH_TOKENS // longest)
    return max(d for d in range(1, per_worker + 1) if per_worker % d == 0 and d <= cap)
