"""WSD cooldown branches through a real sweep (CLI, Ray, DeepSpeed, SQLite): a branch from a trunk's
checkpoint computes what an independent WSD run of the same budget computes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import Store
from orchestrator.store.law_inputs import law_runs
from tests.sweep_runs import checkpointed_step

# 16- and 32-step budgets of 2048 tokens; cooldown 25% (4 and 8 steps) -> branches start at 12 and 24.
BASE = {
    "architectures": ["transformer"],
    "sizes": ["20k"],
    "data": {"seq_len": 64, "val_tokens": 8192},
    "training": {
        "batch_tokens": 2048,
        "lr": 3e-3,
        "schedule": "wsd",
        "cooldown_frac": 0.25,
        "eval_interval": 100,
        "log_interval": 8,
        "checkpoint_interval": 8,
    },
    "resources": {"max_concurrent_trials": 2, "retries": 0},
}


def _spec(name: str, tokens: list[int], **training) -> dict:
    return {**BASE, "name": name, "budgets": {"tokens": tokens}, "training": {**BASE["training"], **training}}


def test_plan_has_one_trunk_per_size_and_seed_and_a_branch_per_budget():
    from orchestrator.kinds import plan_trials
    from orchestrator.planning import flops_saved
    from orchestrator.spec import parse_spec

    spec = parse_spec({**_spec("plan", [32768, 65536], branches=True, warmup_frac=0.125), "seeds": 2})
    trials = plan_trials(spec, 256)
    trunks = [t for t in trials if t.role == "trunk"]
    branches = [t for t in trials if t.role == "branch"]
    assert [t.role for t in trials[:2]] == ["trunk", "trunk"] and len(branches) == 4
    for trunk in trunks:
        assert trunk.steps == 24 and trunk.config.branch_starts == (12, 24)
        assert trunk.config.training.cooldown_steps == 0  # constant after warmup
        mine = [b for b in branches if b.parent_id == trunk.id]
        assert {b.seed for b in mine} == {trunk.seed} and [b.steps for b in mine] == [16, 32]
        assert [b.config.branch.start_step for b in mine] == [12, 24]
        assert all(b.config.branch.release_checkpoint for b in mine)  # one branch per start
        # The same warmup for the trunk and every branch: warmup_frac of the smallest budget.
        assert {t.config.training.warmup_steps for t in [trunk, *mine]} == {2}
    saved = flops_saved(trials)
    # Independent: 16 + 32 steps per seed; branched: a 24-step trunk + 4 + 8 cooldown steps.
    assert saved["ratio"] == pytest.approx(48 / 36)
    assert [t.id for t in plan_trials(spec, 256)] == [t.id for t in trials]  # stable ids


def test_plan_prints_the_flops_saved(tmp_path: Path):
    path = tmp_path / "b.yaml"
    path.write_text(yaml.safe_dump(_spec("b", [32768, 65536], branches=True)))
    result = CliRunner().invoke(app, ["plan", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "cooldown branches:" in text and "(1.33x less)" in text
    as_json = CliRunner().invoke(app, ["plan", str(path), "--json"])
    assert json.loads(as_json.stdout)["flops_saved"]["ratio"] == pytest.approx(48 / 36)


def test_branches_need_a_wsd_schedule():
    from orchestrator.spec import SpecError, parse_spec

    with pytest.raises(SpecError, match="training.branches needs training.schedule: wsd"):
        parse_spec(_spec("c", [32768], branches=True, schedule="cosine"))


def _sweep(tmp_path: Path, workdir: Path, name: str, tokens: list[int], **training) -> dict:
    spec = {**BASE, "name": name, "budgets": {"tokens": tokens}}
    spec["training"] = {**BASE["training"], **training}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["run", str(path), "--workdir", str(workdir), "--json", "--no-mlflow"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.mark.slow
def test_branch_matches_an_independent_run_of_the_same_budget(ray_runtime, tmp_path: Path):
    workdir = tmp_path / "work"
    # Branched: warmup is 12.5% of the smallest budget (2 steps) for the trunk and both branches.
    branched = _sweep(tmp_path, workdir, "branched", [32768, 65536], branches=True, warmup_frac=0.125)
    assert branched["status"] == {"done": 3}
    store = Store.open(f"sqlite:///{workdir / 'ceiling.db'}")
    trials = {t.role: [] for t in store.trials("branched")}
    for t in store.trials("branched"):
        trials[t.role].append(t)
    (trunk,) = trials["trunk"]
    assert trunk.steps_done == 24 and trunk.parent_id is None
    branches = sorted(trials["branch"], key=lambda t: t.steps_total)
    assert [b.steps_total for b in branches] == [16, 32]
    for branch in branches:
        assert branch.parent_id == trunk.id and branch.tokens_seen == branch.tokens
        # It resumed from the trunk's checkpoint at its start step, and counts the whole budget.
        assert branch.final_metrics["resumed_from_step"] == branch.trial_config.branch.start_step

    # Independent 32-step WSD run with the same schedule shape: 2 warmup steps (6.25% of 32), 8 cooldown.
    independent = _sweep(tmp_path, workdir, "independent", [65536], warmup_frac=0.0625)
    assert independent["status"] == {"done": 1}
    (alone,) = store.trials("independent")
    assert alone.trial_config.training.warmup_steps == 2 and alone.trial_config.training.cooldown_steps == 8
    long_branch = branches[1]
    assert long_branch.final_val_loss == pytest.approx(alone.final_val_loss, rel=1e-3)
    # Its own tokens and FLOPs count the trunk prefix it used: the same as the independent run's.
    assert (long_branch.tokens, long_branch.flops_exact) == (alone.tokens, alone.flops_exact)
    print(f"branch {long_branch.final_val_loss:.6f} vs independent {alone.final_val_loss:.6f}")

    # Each branch point's checkpoint was deleted by its only branch once that branch was done.
    assert not list((workdir / "checkpoints").glob(f"{trunk.id}-at*"))

    # Law inputs: branches are points, the trunk is listed as excluded with its reason.
    runs = law_runs(store, "branched")
    assert sorted(runs.columns["run_id"]) == sorted(b.id for b in branches)
    assert [e["trial"] for e in runs.excluded] == [trunk.id]
    assert "trunk" in runs.excluded[0]["reason"]


CRASH = {
    "architectures": ["transformer"],
    "sizes": ["30k"],
    "data": {"seq_len": 64, "val_tokens": 4096},
    "training": {
        "batch_tokens": 2048,
        "precision": "fp32",
        "lr": 3e-3,
        "cooldown_frac": 0.25,
        "eval_interval": 40,
        "log_interval": 2,
        "checkpoint_interval": 4,
    },
    "resources": {"workers_per_trial": 1, "cpus_per_worker": 1, "max_concurrent_trials": 1, "retries": 2},
}


def _context(workdir: Path, name: str, tokens: list[int], **training):
    from rich.console import Console

    from orchestrator.scheduling.runner import prepare_sweep
    from orchestrator.spec import parse_spec

    spec = {
        **CRASH,
        "name": name,
        "budgets": {"tokens": tokens},
        "training": {**CRASH["training"], **training},
    }
    console = Console(stderr=True, quiet=True)
    context = prepare_sweep(
        parse_spec(spec),
        workdir=workdir,
        db_url=f"sqlite:///{workdir / 'c.db'}",
        tracking_uri=None,
        console=console,
    )
    return context, console


@pytest.mark.slow
def test_killed_trunk_and_branch_resume_from_their_checkpoints(ray_runtime, tmp_path: Path):
    import os
    import signal
    import threading
    import time

    from orchestrator.scheduling.runner import run_sweep

    # Budgets of 96 and 160 steps: cooldowns of 24 and 40 steps start at 72 and 120; the trunk runs 120.
    context, console = _context(
        tmp_path / "crash", "crash", [96 * 2048, 160 * 2048], branches=True, warmup_frac=0.05
    )
    outcome: dict = {}

    def sweep() -> None:
        try:
            outcome.update(run_sweep(context, address=None, console=console))
        except BaseException as exc:  # shown by the assertion below instead of lost in the thread
            outcome["error"] = repr(exc)

    runner = threading.Thread(target=sweep)
    runner.start()
    # Kill the trunk's worker once its rolling checkpoint (every 4 steps) is past its branch point at 72,
    # then the long branch's worker once its own first checkpoint (124) is written: each must resume from
    # its own checkpoint. The checkpoint files, not the heartbeat (every 2 s), say when: a 40-step branch
    # can finish between two heartbeats.
    targets = [("trunk", 120, 76), ("branch", 160, 124)]
    killed: dict[str, int] = {}
    deadline = time.time() + 300
    while targets and time.time() < deadline and runner.is_alive():
        role, steps_total, past_step = targets[0]
        for trial in context.store.trials("crash"):
            if (trial.role, trial.steps_total) != (role, steps_total) or trial.status != "running":
                continue
            if trial.worker and checkpointed_step(tmp_path, trial.id) >= past_step:
                pid = int(trial.worker.rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                killed[trial.id] = pid
                targets.pop(0)
                break
        time.sleep(0.05)
    runner.join(timeout=600)
    assert not targets, f"could not kill {targets} in time (killed {killed}; {outcome})"
    assert outcome["outcomes"] == {"done": 3} and outcome["retries"] == 2

    trials = {(t.role, t.steps_total): t for t in context.store.trials("crash")}
    trunk, long_branch = trials[("trunk", 120)], trials[("branch", 160)]
    assert trunk.attempts == 2 and trunk.final_metrics["resumed_from_step"] >= 76
    assert long_branch.attempts == 2 and long_branch.final_metrics["resumed_from_step"] >= 124
    assert trials[("branch", 96)].final_metrics["resumed_from_step"] == 72

    # Still the same computation as an independent 160-step run (5 warmup steps, 40 cooldown).
    reference, _ = _context(tmp_path / "reference", "reference", [160 * 2048], warmup_frac=5 / 160)
    run_sweep(reference, address=None, console=console)
    (alone,) = reference.store.trials("reference")
    assert alone.trial_config.training.warmup_steps == trunk.trial_config.training.warmup_steps == 5
    assert long_branch.final_val_loss == pytest.approx(alone.final_val_loss, rel=1e-3)
