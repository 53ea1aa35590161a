"""Design power from an earlier sweep (`ceiling plan --prior SWEEP`): its laws and its noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import laws
from orchestrator.cli import app
from orchestrator.cli.law_csv import read_law_csv
from orchestrator.kinds import plan_trials
from orchestrator.spec import parse_spec
from orchestrator.store import Store
from orchestrator.study_power import CSV_PRIOR_BOOT, PowerSettings, analyse, measured_noise
from tests.conftest import EXAMPLES
from tests.factories import make_trial

LAW = {"E": 1.0, "A": 30.0, "alpha": 0.3, "B": 60.0, "beta": 0.3}


def _prior_store(path: Path, seeds: int, noise: float) -> str:
    url = f"sqlite:///{path}"
    store = Store.open(url)
    store.upsert_sweep("prior", {"name": "prior"}, workdir=None, code_version="test")
    rng = np.random.default_rng(0)
    rows = []
    for n in np.geomspace(8e3, 128e3, 5):
        for d in np.geomspace(1e5, 8e5, 4):
            for seed in range(seeds):
                loss = (LAW["E"] + LAW["A"] * n ** -LAW["alpha"] + LAW["B"] * d ** -LAW["beta"]) * np.exp(
                    rng.normal(0, noise)
                )
                rows.append((f"t-{n:.0f}-{d:.0f}-{seed}", n, d, seed, loss))
    store.add_trials(
        "prior",
        [
            make_trial(tid, params_non_embedding=int(n), tokens=int(d), flops_6nd=6 * n * d, seed=seed)
            for tid, n, d, seed, _ in rows
        ],
    )
    for tid, *_, loss in rows:
        store.finish(tid, store.claim(tid), final_val_loss=float(loss))
    store.close()
    return url


def test_noise_is_measured_from_seeds(tmp_path: Path):
    url = _prior_store(tmp_path / "s.db", seeds=3, noise=0.01)
    store = Store.open(url)
    assert measured_noise(store, "prior") == pytest.approx(0.01, rel=0.25)
    store.close()


@pytest.mark.parametrize("seeds", [1, 3])
def test_plan_with_a_prior_uses_its_law_and_noise(tmp_path: Path, seeds: int):
    url = _prior_store(tmp_path / "p.db", seeds=seeds, noise=0.01)
    spec = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec["architectures"] = ["transformer"]
    path = tmp_path / "next.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(
        app, ["plan", str(path), "--json", "--prior", "prior", "--db", url, "--simulations", "4"]
    )
    assert result.exit_code == 0, result.output
    power = json.loads(result.stdout)["design_power"]
    law = power["architectures"]["transformer"]["reference_law"]
    assert law["source"] == "the chinchilla law of transformer fitted to sweep 'prior'"
    assert law["alpha"] == pytest.approx(LAW["alpha"], abs=0.1)
    if seeds > 1:
        assert power["noise_source"] == "measured from the seeds of sweep 'prior'"
        assert power["noise"] == pytest.approx(0.01, rel=0.4)
    else:  # no seeds: the scatter about the fitted law stands in for the noise
        assert power["noise_source"].startswith("the median scatter of sweep 'prior'")
        assert 0.003 < power["noise"] < 0.02
    missing = CliRunner().invoke(app, ["plan", str(path), "--prior", "nope", "--db", url])
    assert missing.exit_code == 2 and "--prior: sweep 'nope' is not in the store" in missing.output


def _prior_csv(path: Path, seeds: int, noise: float, law: dict[str, float] = LAW) -> Path:
    """The same law points as a committed law-points file (docs/results/*-runs.csv columns)."""
    rng = np.random.default_rng(1)
    lines = ["architecture,params,tokens,compute,loss,val_bpb,seed,role,run_id"]
    for n in np.geomspace(8e3, 128e3, 5):
        for d in np.geomspace(1e5, 8e5, 4):
            for seed in range(seeds):
                loss = (law["E"] + law["A"] * n ** -law["alpha"] + law["B"] * d ** -law["beta"]) * np.exp(
                    rng.normal(0, noise)
                )
                lines.append(
                    f"transformer,{n:.0f},{d:.0f},{6 * n * d},{loss},{loss / 0.69},{seed},branch,r{n:.0f}-{d:.0f}-{seed}"
                )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_plan_with_a_law_points_csv_prior(tmp_path: Path):
    """A committed law-points CSV stands in for a store: its law and its seed noise are used."""
    prior = _prior_csv(tmp_path / "prior-runs.csv", seeds=3, noise=0.01)
    spec = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec["architectures"] = ["transformer"]
    path = tmp_path / "next.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(
        app, ["plan", str(path), "--json", "--prior", str(prior), "--simulations", "4"]
    )
    assert result.exit_code == 0, result.output
    power = json.loads(result.stdout)["design_power"]
    law = power["architectures"]["transformer"]["reference_law"]
    assert law["source"] == f"the chinchilla law of transformer fitted to {prior}"
    assert law["alpha"] == pytest.approx(LAW["alpha"], abs=0.1)
    assert power["noise_source"] == f"measured from the seeds of the law points in {prior}"
    assert power["noise"] == pytest.approx(0.01, rel=0.4)
    missing = CliRunner().invoke(app, ["plan", str(path), "--prior", str(tmp_path / "absent.csv")])
    assert missing.exit_code == 2 and "--prior: runs CSV not found" in missing.output


def test_a_degenerate_prior_gives_its_point_estimate_not_epochs(tmp_path: Path):
    """Where the prior's size term is too small to resolve, the simulation starts from what the prior
    data said (a degenerate fit's point estimate) instead of from Epoch's exponents, which promise
    identification the prior never showed."""
    flat = {"E": 0.5, "A": 0.4, "alpha": 0.15, "B": 60.0, "beta": 0.3}  # loss barely moves with size
    prior = _prior_csv(tmp_path / "flat-runs.csv", seeds=3, noise=0.015, law=flat)
    spec = yaml.safe_load((EXAMPLES / "quickstart.yaml").read_text())
    spec["architectures"] = ["transformer"]
    parsed = parse_spec(spec)
    # Two simulated studies and no search for fixes: this test is about which law is simulated.
    settings = PowerSettings(prior_sweep=str(prior), n_sim=2, suggest=False)
    document = analyse(parsed, plan_trials(parsed, 256), settings)
    arch = document["architectures"]["transformer"]
    assert arch["reference_law"]["source"].endswith("(a degenerate fit: its point estimate)")
    assert "Epoch" not in arch["reference_law"]["source"]
    runs, _ = read_law_csv(prior)
    point = laws.fit(runs, "chinchilla", n_boot=CSV_PRIOR_BOOT, n_jobs=1)
    assert point.health.is_degenerate
    for name in ("E", "A", "alpha", "B", "beta"):
        assert arch["reference_law"][name] == pytest.approx(point.params[name], rel=1e-9)
