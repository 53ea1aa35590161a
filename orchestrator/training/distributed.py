"""Process-group and DeepSpeed set-up shared by every worker process.

Known traps handled here:
- DeepSpeed's CPU accelerator compiles a shared-memory all-reduce op on first use (~40-70 s, and it
  fails without a compiler); gloo's all-reduce is fine for our sizes, so the build is skipped.
- DeepSpeed reads RANK / LOCAL_RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT even for one process.
- fp16 is not supported on CPU; bf16 is.
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return sock.getsockname()[1]


def set_rank_environment(
    rank: int, world: int, master_addr: str, master_port: int, local_rank: int = 0
) -> None:
    os.environ.update(
        {
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(local_rank),
            "LOCAL_WORLD_SIZE": os.environ.get("LOCAL_WORLD_SIZE", "1"),
            "MASTER_ADDR": master_addr,
            "MASTER_PORT": str(master_port),
        }
    )


def skip_shared_memory_op_build() -> None:
    import deepspeed  # noqa: F401  (registers deepspeed.comm.torch)

    # `import deepspeed.comm.torch as m` would bind the real torch: deepspeed.comm re-exports it.
    module = sys.modules["deepspeed.comm.torch"]
    module.build_shm_op = lambda: None


def init_process_group(rank: int, world: int, master_addr: str, master_port: int, use_cuda: bool) -> None:
    """Join (once per process) the group this worker trains in; reused by every trial it runs."""
    import deepspeed
    import torch.distributed as dist

    set_rank_environment(rank, world, master_addr, master_port)
    skip_shared_memory_op_build()
    if not dist.is_initialized():
        deepspeed.init_distributed(
            dist_backend="nccl" if use_cuda else "gloo", auto_mpi_discovery=False, rank=rank, world_size=world
        )


def deepspeed_config(
    *,
    micro_batch_size: int,
    grad_accum: int,
    world: int,
    precision: str,
    grad_clip: float,
    zero_stage: int,
    overrides: dict[str, Any] | None = None,
    preset: str | None = None,
) -> dict[str, Any]:
    """The DeepSpeed config of one trial: ours < ``preset`` < ``zero_stage`` < ``overrides``.

    ``bf16.enabled`` follows ``precision`` (training.precision) whatever the preset says; ``zero_stage``
    is the spec's, which already defaults to the preset's stage (see ``DeepSpeedSpec``).
    """
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": grad_accum,
        "train_batch_size": micro_batch_size * grad_accum * world,
        "gradient_clipping": grad_clip,
        "zero_optimization": {"stage": zero_stage},
        "bf16": {"enabled": precision == "bf16"},
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
        "zero_allow_untested_optimizer": True,
    }
    if preset:
        from orchestrator.presets import merge_preset

        config = merge_preset(config, preset)
        config["zero_optimization"] = {**config.get("zero_optimization", {}), "stage": zero_stage}
        config["bf16"] = {**config.get("bf16", {}), "enabled": precision == "bf16"}
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config
