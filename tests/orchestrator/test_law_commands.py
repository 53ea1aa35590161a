"""`ceiling fit | laws | predict | compare` on known laws: CSV input and a real SQLite store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.store import Fit, Store
from tests.factories import make_trial

TRUE = {"E": 1.8, "A": 400.0, "alpha": 0.34, "B": 1500.0, "beta": 0.30}


def chinchilla(n, d, p=TRUE):
    return p["E"] + p["A"] / n ** p["alpha"] + p["B"] / d ** p["beta"]


def grid(seed: int = 0, noise: float = 0.002):
    rng = np.random.default_rng(seed)
    rows = []
    for n in np.geomspace(1e6, 3e8, 7):
        for ratio in (5, 10, 20, 40, 80):
            d = n * ratio
            rows.append((n, d, chinchilla(n, d) * np.exp(rng.normal(0, noise))))
    return rows


def _store_with_runs(path: Path, groups: dict[str, dict]) -> Store:
    store = Store.open(f"sqlite:///{path}")
    store.upsert_sweep("synthetic", {"name": "synthetic"}, workdir=None, code_version="test")
    rows = []
    for label, params in groups.items():
        for i, (n, d, _) in enumerate(grid(seed=len(rows))):
            rows.append((f"{label}-{i}", label, n, d, chinchilla(n, d, params)))
    store.add_trials(
        "synthetic",
        [
            make_trial(
                tid, arch=label, label=label, params_non_embedding=int(n), tokens=int(d), flops_6nd=6 * n * d
            )
            for tid, label, n, d, _ in rows
        ],
    )
    for tid, _, _, _, loss in rows:
        attempt = store.claim(tid)
        store.finish(tid, attempt, final_val_loss=loss, final_val_bpb=loss / np.log(2))
    return store


def _run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_fit_csv_recovers_the_law_and_prints_the_json_contract(tmp_path: Path):
    path = tmp_path / "runs.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["params", "tokens", "loss"])
        writer.writerows(grid())
    result = _run("fit", str(path), "--json", "--n-boot", "50")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["form"] == "chinchilla" and document["n_runs"] == 35
    assert set(document["params"]) == {"E", "A", "alpha", "B", "beta"}
    assert document["params"]["alpha"] == pytest.approx(TRUE["alpha"], abs=0.03)
    assert document["params"]["E"] == pytest.approx(TRUE["E"], abs=0.05)
    lo, hi = document["ci95"]["alpha"]
    assert lo < document["params"]["alpha"] < hi


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tokens,loss\n1e6,3.0\n", "missing column 'params'"),
        ("params,tokens,loss\n1e6,-5,3.0\n", "tokens"),
        ("params,tokens,loss\n1e6,1e7,3.0\n2e6,2e7,2.9\n", "needs >= 8 runs"),
    ],
    ids=["missing-column", "negative-tokens", "too-few-runs"],
)
def test_fit_rejects_bad_csv_with_exit_2(tmp_path: Path, content: str, message: str):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    result = _run("fit", str(path), "--n-boot", "10")
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.mark.parametrize("header", ["params,tokens,loss,notes", "params,tokens,loss,notes,group"])
def test_fit_names_the_line_column_and_value_that_is_not_a_number(tmp_path: Path, header: str):
    rows = [f"{n:.6g},{d:.6g},{loss:.5f},free text" for n, d, loss in grid()]
    rows[3] = rows[3].replace(rows[3].split(",")[2], "abc")  # line 5: header, then rows 1-3
    if header.endswith("group"):
        rows = [f"{row},{'a' if i % 2 else 'b'}" for i, row in enumerate(rows)]
    path = tmp_path / "runs.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    result = _run("fit", str(path), "--n-boot", "0", "--json")
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert f"{path} line 5: column 'loss' has 'abc', not a number" in " ".join(result.output.split())
    # A text column that no fit reads (notes) is still fine.
    path.write_text("\n".join([header, *(row.replace("abc", "3.1") for row in rows)]) + "\n")
    assert _run("fit", str(path), "--n-boot", "0", "--json").exit_code == 0


def test_laws_from_the_store_are_cached_and_exclude_unfinished_runs(tmp_path: Path):
    store = _store_with_runs(tmp_path / "c.db", {"transformer": TRUE})
    store.add_trials("synthetic", [make_trial("bad", label="transformer")])
    store.fail("bad", store.claim("bad"), "loss is nan", status="diverged", diverged_step=7)
    args = ("laws", "synthetic", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--n-boot", "40", "--json")
    first = _run(*args)
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    fit = document["fits"]["transformer"]
    assert fit["n_runs"] == 35 and "bad" not in fit["runs"]
    assert fit["params"]["beta"] == pytest.approx(TRUE["beta"], abs=0.03)
    assert document["excluded"] == [
        {"trial": "bad", "label": "transformer", "status": "diverged", "reason": "diverged at step 7"}
    ]
    with store.session() as session:
        assert session.query(Fit).count() == 1
    second = _run(*args)
    assert json.loads(second.stdout)["fits"] == document["fits"]
    with store.session() as session:
        assert session.query(Fit).count() == 1  # served from the cache, not refitted


def test_predict_at_a_size_and_at_a_compute_budget(tmp_path: Path):
    _store_with_runs(tmp_path / "c.db", {"transformer": TRUE})
    db = f"sqlite:///{tmp_path / 'c.db'}"
    at_size = _run(
        "predict",
        "--arch",
        "transformer",
        "--params",
        "1B",
        "--tokens",
        "20B",
        "--db",
        db,
        "--n-boot",
        "40",
        "--json",
    )
    assert at_size.exit_code == 0, at_size.output
    predicted = json.loads(at_size.stdout)["predicted"]
    assert predicted["value"] == pytest.approx(chinchilla(1e9, 2e10), rel=0.02)
    lo, hi = predicted["ci95"]
    assert lo <= predicted["value"] <= hi
    at_compute = _run(
        "predict", "--arch", "transformer", "--compute", "1e21", "--db", db, "--n-boot", "40", "--json"
    )
    assert at_compute.exit_code == 0, at_compute.output
    optimum = json.loads(at_compute.stdout)
    assert 6 * optimum["N_opt"]["value"] * optimum["D_opt"]["value"] == pytest.approx(1e21, rel=0.01)
    neither = _run("predict", "--arch", "transformer", "--params", "1B", "--db", db)
    assert neither.exit_code == 2 and "--params and --tokens, or --compute" in neither.output


def test_compare_finds_the_better_architecture(tmp_path: Path):
    better = {**TRUE, "E": 1.7}  # lower irreducible loss: ahead at every compute
    _store_with_runs(tmp_path / "c.db", {"transformer": TRUE, "gla": better})
    result = _run(
        "compare",
        "synthetic",
        "--baseline",
        "transformer",
        "--at",
        "1e22",
        "--db",
        f"sqlite:///{tmp_path / 'c.db'}",
        "--n-boot",
        "60",
        "--json",
    )
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)["comparisons"]["gla"]
    assert comparison["x"] == "gla" and comparison["baseline"] == "transformer"
    text = json.dumps(comparison["verdicts"])
    assert "gla" in text
    missing = _run("compare", "synthetic", "--baseline", "mamba", "--db", f"sqlite:///{tmp_path / 'c.db'}")
    assert missing.exit_code == 2 and "gla" in missing.output


def _two_budget_store(path: Path) -> Store:
    """The old quickstart's design: 4 sizes x 2 budgets per architecture, Chinchilla cannot separate
    its data term (beta is not identified)."""
    store = Store.open(f"sqlite:///{path}")
    store.upsert_sweep("two", {"name": "two"}, workdir=None, code_version="test")
    rng = np.random.default_rng(3)
    rows = []
    for label, params in {"transformer": TRUE, "gla": {**TRUE, "E": 1.7}}.items():
        for n in (25e3, 50e3, 100e3, 200e3):
            for d in (1e6, 2e6):
                loss = chinchilla(n, d, params) * np.exp(rng.normal(0, 0.002))
                rows.append((f"{label}-{n:g}-{d:g}", label, n, d, loss))
    store.add_trials(
        "two",
        [
            make_trial(
                tid, arch=label, label=label, params_non_embedding=int(n), tokens=int(d), flops_6nd=6 * n * d
            )
            for tid, label, n, d, _ in rows
        ],
    )
    for tid, _, _, _, loss in rows:
        store.finish(tid, store.claim(tid), final_val_loss=loss)
    return store


def test_every_human_answer_carries_its_fit_health(tmp_path: Path):
    _two_budget_store(tmp_path / "two.db")
    db = ("--db", f"sqlite:///{tmp_path / 'two.db'}", "--n-boot", "60")
    explicit = _run("laws", "two", "--form", "chinchilla", *db)
    assert explicit.exit_code == 0, explicit.output
    text = " ".join(explicit.output.split())
    assert "health: degenerate" in text and "only 2 distinct token budgets" in text
    assert "numbers from this fit are not estimates" in text
    document = json.loads(_run("laws", "two", "--form", "chinchilla", "--json", *db).stdout)
    assert document["fits"]["gla"]["health"]["status"] == "degenerate"  # --json keeps numbers + health

    auto = _run("laws", "two", *db)  # --form auto: chinchilla is passed over, and the output says why
    text = " ".join(auto.output.split())
    assert "form auto -> power_c" in text and "chinchilla degenerate" in text

    predicted = _run(
        "predict", "--arch", "gla", "--params", "1M", "--tokens", "20M", "--form", "chinchilla", *db
    )
    assert predicted.exit_code == 0, predicted.output
    lines = predicted.output.splitlines()
    assert lines[0].startswith("gla: val_loss at 1e+06 params, 2e+07 tokens: ") and "(95% CI " in lines[0]
    assert "{" not in predicted.output  # a line for people, not a Python dict
    assert "NOT AN ESTIMATE: the chinchilla fit is degenerate" in " ".join(predicted.output.split())

    compared = _run("compare", "two", "--baseline", "transformer", "--form", "chinchilla", *db)
    assert compared.exit_code == 0, compared.output
    text = " ".join(compared.output.split())
    assert text.startswith("[chinchilla; gla degenerate, transformer degenerate]")
    assert "no trend or crossover stated" in text and "is not an estimate" in text
    as_json = json.loads(_run("compare", "two", "--form", "chinchilla", "--json", *db).stdout)
    assert as_json["comparisons"]["gla"]["verdicts"]["largest_measured"]["kind"] == "not_estimated"


def test_laws_backtest_prints_held_out_errors(tmp_path: Path):
    _store_with_runs(tmp_path / "c.db", {"transformer": TRUE})
    args = ("laws", "synthetic", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--n-boot", "40", "--backtest")
    result = _run(*args)
    assert result.exit_code == 0, result.output
    assert "backtest: fit without the largest size (budget), predict it" in result.output
    document = json.loads(_run(*args, "--json").stdout)
    backtest = document["fits"]["transformer"]["health"]["backtest"]
    size = backtest["largest_size"]
    assert size["n_test_runs"] == 5 and size["abs_rel_error_mean"] < 0.02
    assert 0 <= size["inside_band"] <= 5
    assert backtest["largest_budget"]["held_out_by"] == "tokens"


def test_fit_reads_a_ceiling_runs_export_keeping_law_points_only(tmp_path: Path):
    """`ceiling runs SWEEP --csv > runs.csv; ceiling fit runs.csv` works as the README prints it."""
    store = _store_with_runs(tmp_path / "c.db", {"transformer": TRUE})
    store.add_trials("synthetic", [make_trial("trunk-1", label="transformer", role="trunk")])
    store.finish("trunk-1", store.claim("trunk-1"), final_val_loss=9.0)
    exported = _run("runs", "synthetic", "--db", f"sqlite:///{tmp_path / 'c.db'}", "--csv")
    assert exported.exit_code == 0, exported.output
    path = tmp_path / "runs.csv"
    path.write_text(exported.stdout)
    result = _run("fit", str(path), "--n-boot", "40", "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["n_runs"] == 35 and "trunk-1" not in document["runs"]  # a WSD trunk is not a law point
    assert document["form"] == "chinchilla" and document["fit"]["form_choice"]["chosen"] == "chinchilla"
    assert document["params"]["alpha"] == pytest.approx(TRUE["alpha"], abs=0.03)
    assert "left out 1 rows that are not law points" in result.output


def test_law_points_csv_refits_as_it_is(tmp_path: Path):
    store = _store_with_runs(tmp_path / "c.db", {"transformer": TRUE})
    store.add_trials("synthetic", [make_trial("tune-1", label="transformer", role="tuning")])
    store.finish("tune-1", store.claim("tune-1"), final_val_loss=9.0)
    db = ("--db", f"sqlite:///{tmp_path / 'c.db'}")
    exported = _run("runs", "synthetic", *db, "--csv", "--law-points")
    assert exported.exit_code == 0, exported.output
    lines = exported.stdout.splitlines()
    assert lines[0] == "architecture,params,tokens,compute,loss,val_bpb,seed,role,run_id"
    assert len(lines) == 1 + 35 and "tune-1" not in exported.stdout
    path = tmp_path / "points.csv"
    path.write_text(exported.stdout)
    fitted = json.loads(_run("fit", str(path), "--n-boot", "40", "--json").stdout)
    from_store = json.loads(_run("laws", "synthetic", *db, "--n-boot", "40", "--json").stdout)
    assert fitted["params"] == pytest.approx(from_store["fits"]["transformer"]["params"], rel=1e-6)
    assert _run("runs", "synthetic", *db, "--law-points").exit_code == 2  # needs --csv
