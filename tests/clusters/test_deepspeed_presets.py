"""DeepSpeed presets: shipped files, spec resolution by name, merge order, and real DeepSpeed engines."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.presets import (
    OWNED_KEYS,
    PRESET_DIR,
    PresetError,
    deepspeed_preset,
    deepspeed_presets,
    describe,
    preset_zero_stage,
)
from orchestrator.spec import SpecError, parse_spec
from orchestrator.training.distributed import deepspeed_config
from tests.conftest import REPO

PRESETS = deepspeed_presets()
BASE = {
    "name": "ds",
    "architectures": ["transformer"],
    "sizes": ["20k"],
    "budgets": {"tokens": ["64k"]},
    "data": {"seq_len": 64},
    "training": {"batch_tokens": 2048},
}


def _config(preset: str | None, zero_stage: int, precision: str = "bf16", overrides: dict | None = None):
    return deepspeed_config(
        micro_batch_size=4,
        grad_accum=2,
        world=2,
        precision=precision,
        grad_clip=0.5,
        zero_stage=zero_stage,
        overrides=overrides,
        preset=preset,
    )


def test_the_issue_presets_are_shipped():
    assert {"zero1-bf16", "zero2-bf16", "zero3-bf16", "zero3-bf16-actckpt"} <= set(PRESETS)


@pytest.mark.parametrize("name", PRESETS)
def test_shipped_preset_is_valid_and_copied_to_clusters(name: str):
    packaged = PRESET_DIR / f"{name}.json"
    assert (REPO / "clusters" / "deepspeed" / f"{name}.json").read_bytes() == packaged.read_bytes()
    blocks = deepspeed_preset(name)
    assert not OWNED_KEYS & blocks.keys()
    assert f"zero{preset_zero_stage(name)}" in name  # the name says the stage
    assert describe(name)
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    DeepSpeedZeroConfig(**blocks["zero_optimization"])  # DeepSpeed's own schema (extra="forbid")


def test_clusters_copy_has_no_extra_presets():
    assert sorted(p.stem for p in (REPO / "clusters" / "deepspeed").glob("*.json")) == PRESETS


def test_spec_takes_the_stage_from_the_preset_unless_given():
    assert parse_spec(BASE | {"deepspeed": {"preset": "zero2-bf16"}}).deepspeed.zero_stage == 2
    explicit = parse_spec(BASE | {"deepspeed": {"preset": "zero3-bf16", "zero_stage": 1}})
    assert explicit.deepspeed.zero_stage == 1
    # The stored spec round-trips (resume parses it again) without changing the stage.
    again = parse_spec(explicit.model_dump(mode="json"))
    assert again.deepspeed == explicit.deepspeed


@pytest.mark.parametrize("name", ["zero9", "../zero2-bf16", "ZERO2-BF16", "", "zero2-bf16.json"])
def test_unknown_preset_is_a_spec_error_listing_the_known_ones(name: str):
    with pytest.raises(SpecError) as info:
        parse_spec(BASE | {"deepspeed": {"preset": name}})
    message = str(info.value)
    assert f"deepspeed.preset: unknown DeepSpeed preset {name!r}; known: {', '.join(PRESETS)}" in message


def test_unknown_preset_through_the_cli_exits_2_and_writes_nothing(tmp_path: Path):
    import yaml

    spec = tmp_path / "s.yaml"
    spec.write_text(yaml.safe_dump(BASE | {"deepspeed": {"preset": "zero4"}}))
    work = tmp_path / "work"
    result = CliRunner().invoke(app, ["run", str(spec), "--workdir", str(work)])
    assert result.exit_code == 2
    assert "deepspeed.preset: unknown DeepSpeed preset 'zero4'" in " ".join(result.output.split())
    assert not work.exists()


def test_preset_merges_under_stage_and_overrides_and_precision_wins():
    config = _config("zero3-bf16", 3)
    assert config["zero_optimization"]["stage"] == 3
    assert config["zero_optimization"]["stage3_prefetch_bucket_size"] == 50_000_000
    assert config["train_batch_size"] == 16 and config["gradient_clipping"] == 0.5  # ours, untouched
    assert _config("zero3-bf16", 1)["zero_optimization"]["stage"] == 1  # explicit stage wins
    assert _config("zero2-bf16", 2, precision="fp32")["bf16"] == {"enabled": False}
    overridden = _config(
        "zero2-bf16", 2, overrides={"zero_optimization": {"overlap_comm": False}, "steps_per_print": 5}
    )
    assert overridden["zero_optimization"]["overlap_comm"] is False  # overrides win over the preset
    assert overridden["zero_optimization"]["contiguous_gradients"] is True  # the rest of the preset stays
    assert overridden["steps_per_print"] == 5
    assert "activation_checkpointing" in _config("zero3-bf16-actckpt", 3)
    assert _config(None, 0) == deepspeed_config(
        micro_batch_size=4, grad_accum=2, world=2, precision="bf16", grad_clip=0.5, zero_stage=0
    )


def test_a_preset_setting_what_ceiling_owns_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import orchestrator.presets as presets

    (tmp_path / "greedy.json").write_text(json.dumps({"train_batch_size": 4096}))
    monkeypatch.setattr(presets, "PRESET_DIR", tmp_path)
    presets._load.cache_clear()
    try:
        with pytest.raises(PresetError, match=r"sets \['train_batch_size'\]"):
            presets.deepspeed_preset("greedy")
    finally:
        presets._load.cache_clear()


DEEPSPEED_SCRIPT = textwrap.dedent(
    """
    import json, torch, deepspeed, models
    from orchestrator.presets import deepspeed_presets, preset_zero_stage
    from orchestrator.training.distributed import deepspeed_config, free_port, init_process_group

    init_process_group(0, 1, "127.0.0.1", free_port(), False)
    out = {}
    for name in deepspeed_presets():
        torch.manual_seed(0)
        model = models.build("transformer", size=20000, vocab_size=256)
        config = deepspeed_config(micro_batch_size=2, grad_accum=1, world=1, precision="bf16", grad_clip=1.0,
                                  zero_stage=preset_zero_stage(name), preset=name)
        engine, *_ = deepspeed.initialize(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-3),
                                          config=config, dist_init_required=False)
        generator, losses = torch.Generator().manual_seed(1), []
        for _ in range(3):
            tokens = torch.randint(0, 256, (2, 16), generator=generator)
            loss = torch.nn.functional.cross_entropy(engine(tokens).float().reshape(-1, 256), tokens.reshape(-1))
            engine.backward(loss)
            engine.step()
            losses.append(loss.item())
        out[name] = {"stage": engine.zero_optimization_stage(), "bf16": engine.bfloat16_enabled(), "losses": losses}
    print("RESULT " + json.dumps(out))
    """
)


@pytest.mark.slow
def test_every_preset_trains_through_a_deepspeed_engine_on_cpu():
    """One process (gloo, world 1): each preset builds an engine of its stage and takes 3 bf16 steps."""
    done = subprocess.run(
        [sys.executable, "-c", DEEPSPEED_SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    results = json.loads(line.removeprefix("RESULT "))
    assert sorted(results) == PRESETS
    reference = results["zero1-bf16"]["losses"]
    for name, outcome in results.items():
        assert outcome["stage"] == preset_zero_stage(name) and outcome["bf16"], name
        assert outcome["losses"] == pytest.approx(reference, rel=2e-2), name  # one worker: same math
        assert outcome["losses"][-1] < outcome["losses"][0], name
