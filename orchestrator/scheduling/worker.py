"""A warm training worker: a Ray actor that imports torch and DeepSpeed once and runs trial after trial.

A fresh Ray Train worker group takes 16-19 s to start here, longer than many CPU trials; an actor
that stays up keeps that cost off every trial but the first. Workers of a multi-worker trial form one
process group once (gloo on CPU, NCCL on GPUs) and reuse it for every trial the group runs.
"""

from __future__ import annotations

import os
import socket
from typing import Any


class TrialWorker:
    """Wrapped with ``ray.remote`` by :mod:`orchestrator.scheduling.groups` (keeps Ray out of import time)."""

    def __init__(self, rank: int, world: int, threads: int, cache_dir: str | None = None):
        self.rank, self.world = rank, world
        if cache_dir:
            os.environ["CEILING_CACHE"] = cache_dir
        import torch

        torch.set_num_threads(max(1, threads))
        # Pay the heavy imports now, while the orchestrator is still planning, not when a trial starts.
        import deepspeed  # noqa: F401

        import models  # noqa: F401
        from orchestrator.training import loop  # noqa: F401
        from orchestrator.training.distributed import skip_shared_memory_op_build

        skip_shared_memory_op_build()
        self.use_cuda = torch.cuda.is_available()

    def rendezvous_address(self) -> tuple[str, int]:
        import ray

        from orchestrator.training.distributed import free_port

        return ray.util.get_node_ip_address(), free_port()

    def join_group(self, master_addr: str, master_port: int) -> str:
        from orchestrator.training.distributed import init_process_group

        if self.use_cuda:
            import torch

            torch.cuda.set_device(0)  # Ray sets CUDA_VISIBLE_DEVICES to this worker's GPU
        init_process_group(self.rank, self.world, master_addr, master_port, self.use_cuda)
        return socket.gethostname()

    def run(self, payload: dict[str, Any]) -> dict[str, Any]:
        from orchestrator.kinds import kind_of
        from orchestrator.training.loop import TrialPayload, train_trial
        from orchestrator.trial import TrialConfig

        # The trial's kind of study says what it trains on and how it is scored.
        kind = kind_of(TrialConfig.from_dict(payload["config"]))
        return train_trial(
            TrialPayload(**{**payload, "use_cuda": self.use_cuda}),
            rank=self.rank,
            world=self.world,
            make_task=kind.make_task,
        )

    def pid(self) -> int:
        return os.getpid()
