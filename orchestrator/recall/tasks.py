"""The recall study's training task (see orchestrator/training/task.py for what the loop asks of one).

``RecallTask``: a synthetic recall task (MQAR or copy) generated from the trial's seed; accuracy and
loss at the scored positions of fixed test sets, the same for every trial, seed and architecture.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from orchestrator.recall.generators import IGNORE_INDEX, copy_strings, mqar
from orchestrator.recall.planning import settings_of, train_setting_index
from orchestrator.trial import RecallTaskSettings, TrialConfig

TRAIN_STREAM, TEST_STREAM = 1, 2  # rng stream tags: train data depends on the trial seed, test data never


def generate(task: RecallTaskSettings, setting: Any, rng: np.random.Generator, examples: int):
    """``examples`` sequences of one setting of a recall task."""
    if task.name == "mqar":
        return mqar(
            rng,
            examples,
            vocab_size=task.vocab_size,
            seq_len=setting.seq_len,
            kv_pairs=setting.kv_pairs,
            power_a=task.power_a,
            random_fillers=task.random_fillers,
        )
    return copy_strings(rng, examples, alphabet=task.alphabet, length=setting.length)


def test_set(task: RecallTaskSettings, setting: Any) -> tuple[np.ndarray, np.ndarray]:
    """The fixed test sequences of a setting: the same for every trial, seed and architecture."""
    key = (setting.seq_len, setting.kv_pairs) if task.name == "mqar" else (setting.length,)
    rng = np.random.default_rng([TEST_STREAM, *key])
    return generate(task, setting, rng, task.test_examples)


class RecallTask:
    def __init__(self, config: TrialConfig):
        self.task: RecallTaskSettings = config.task.task
        self.seed = config.seed
        self.sequences_per_step = config.training.sequences_per_step
        self.train, self.test = settings_of(config)
        self.flops_seq_len = max(s.input_len for s in self.train)
        self._pools: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._tests = [test_set(self.task, s) for s in self.test]

    def tokens_seen(self, step: int) -> int:
        # every step draws from one train setting, in turn (see train_setting_index)
        lengths = [s.input_len for s in self.train]
        full, rest = divmod(step, len(lengths))
        return self.sequences_per_step * (full * sum(lengths) + sum(lengths[:rest]))

    def _pool(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self._pools:
            rng = np.random.default_rng([self.seed, TRAIN_STREAM, index])
            inputs, targets = generate(self.task, self.train[index], rng, self.task.train_examples)
            self._pools[index] = (inputs.astype(np.int32), targets.astype(np.int32))
        return self._pools[index]

    def step_batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The whole global batch of optimizer step ``step`` (every worker computes the same one)."""
        index = train_setting_index(step, len(self.train))
        if self.task.train_examples:
            inputs, targets = self._pool(index)
            rows = np.random.default_rng([self.seed, TRAIN_STREAM, index, step]).integers(
                0, len(inputs), size=self.sequences_per_step
            )
            return inputs[rows].astype(np.int64), targets[rows].astype(np.int64)
        rng = np.random.default_rng([self.seed, TRAIN_STREAM, index, step])
        return generate(self.task, self.train[index], rng, self.sequences_per_step)

    def micro_batches(self, step: int, rank: int, world: int, micro: int):
        inputs, targets = self.step_batch(step)
        inputs_BT = torch.from_numpy(np.ascontiguousarray(inputs[rank::world]))
        targets_BT = torch.from_numpy(np.ascontiguousarray(targets[rank::world]))
        return [
            (inputs_BT[i : i + micro], targets_BT[i : i + micro]) for i in range(0, len(inputs_BT), micro)
        ]

    def evaluate(
        self, engine, *, rank: int, world: int, batch_size: int, device: torch.device
    ) -> dict[str, float]:
        from orchestrator.recall.evaluation import recall_metrics

        return recall_metrics(
            engine,
            self.test,
            self._tests,
            exact=self.task.name == "copy",
            rank=rank,
            world=world,
            batch_size=batch_size,
            device=device,
        )

    def final_evaluate(self, engine, **_: Any) -> dict[str, float]:
        return {}


__all__ = ["IGNORE_INDEX", "RecallTask", "generate", "test_set"]
