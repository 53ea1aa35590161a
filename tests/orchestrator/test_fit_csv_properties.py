"""Property tests of the CSV fit input: any file either fits or is a LawInputError naming what is wrong.

`laws.read_runs_csv` and `ceiling fit` get generated CSVs: random headers (known and unknown columns,
duplicates, blanks), ragged rows, and cells that are numbers, negatives, zeros, NaN/inf, blanks, text,
quotes and commas. `ceiling fit` must exit 0 (one JSON document on stdout), 2 with a message naming a
column / row / form, or 1 only for a fit that did not converge; never a traceback.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import laws
from laws import LawInputError
from orchestrator.cli import app

COLUMNS = ["params", "tokens", "compute", "loss", "val_loss", "group", "run_id", "notes"]
WORDS = ("column", "row", "csv", "runs", "form", "metric", "group", "size", "fit")


def _cells(positive: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        positive,
        st.sampled_from(
            ["", "nan", "NaN", "inf", "-inf", "-1", "0", "1e400", "abc", "1,000", " 5 ", '"q"', "1e9"]
        ),
        st.floats().map(repr),
        st.integers(-(10**30), 10**30).map(str),
        st.text(max_size=8),
    )


positive_numbers = st.floats(min_value=1e3, max_value=1e13).map(lambda v: f"{v:.6g}")


@st.composite
def csv_text(draw, cells=_cells(positive_numbers)) -> str:
    header = draw(st.lists(st.one_of(st.sampled_from(COLUMNS), st.text(max_size=6)), max_size=7))
    width = len(header)
    rows = draw(st.lists(st.lists(cells, min_size=max(0, width - 1), max_size=width + 1), max_size=10))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


@st.composite
def plausible_runs(draw) -> str:
    """Mostly-valid run tables (so fits are attempted), with a few bad cells mixed in."""
    optional = draw(st.lists(st.sampled_from(["compute", "group", "run_id", "notes"]), unique=True))
    header = ["params", "tokens", "loss", *optional]
    good = {
        "params": st.floats(1e5, 1e10).map(lambda v: f"{v:.5g}"),
        "tokens": st.floats(1e6, 1e12).map(lambda v: f"{v:.5g}"),
        "compute": st.floats(1e12, 1e22).map(lambda v: f"{v:.5g}"),
        "loss": st.floats(1.5, 6.0).map(lambda v: f"{v:.4f}"),
        "group": st.sampled_from(["transformer", "gla"]),
        "run_id": st.integers(0, 20).map(lambda i: f"r{i}"),
        "notes": st.text(max_size=5),
    }
    bad = st.sampled_from(["", "nan", "-3", "0", "x", "inf"])
    rows = [
        [draw(bad if draw(st.integers(0, 30)) == 0 else good[h]) for h in header]
        for _ in range(draw(st.integers(0, 14)))
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _write(folder: Path, text: str) -> Path:
    path = folder / "runs.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _names_something(message: str) -> bool:
    return any(word in message.lower() for word in WORDS)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.one_of(csv_text(), st.text(max_size=120)))
def test_read_runs_csv_gives_runs_or_a_law_input_error(tmp_path_factory: pytest.TempPathFactory, text: str):
    path = _write(tmp_path_factory.mktemp("csv"), text)
    try:
        runs = laws.read_runs_csv(path)
    except LawInputError as error:
        assert _names_something(str(error)), str(error)
        return
    # What validated is usable: positive finite structure, one value per row everywhere.
    n = len(runs)
    assert n > 0
    for column in (runs.params, runs.tokens, runs.compute):
        assert column.shape == (n,) and np.all(np.isfinite(column)) and np.all(column > 0)
    assert runs.run_id.shape == runs.group.shape == (n,)
    assert all(values.shape == (n,) for values in runs.metrics.values())


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.one_of(plausible_runs(), csv_text()), st.sampled_from(["chinchilla", "power_n", "power_c", "bogus"])
)
def test_ceiling_fit_exits_0_1_or_2_with_a_clear_message(
    tmp_path_factory: pytest.TempPathFactory, text: str, form: str
):
    path = _write(tmp_path_factory.mktemp("fit"), text)
    result = CliRunner().invoke(app, ["fit", str(path), "--form", form, "--n-boot", "0", "--json"])
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        document = json.loads(result.stdout)
        assert "params" in document or "fits" in document
    elif result.exit_code == 2:
        assert result.stdout == "" and result.output.startswith("error:")
        assert _names_something(result.output), result.output
    else:
        assert result.exit_code == 1 and "FitDidNotConverge" in result.output, result.output


def test_a_csv_that_is_not_utf8_is_a_law_input_error(tmp_path: Path):
    path = tmp_path / "runs.csv"
    path.write_bytes("params,tokens,loss,group\n1e6,2e7,3.1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(LawInputError, match="not UTF-8"):
        laws.read_runs_csv(path)


def test_a_huge_cell_is_a_law_input_error(tmp_path: Path):
    path = _write(tmp_path, "params,tokens,loss\n" + "1" * 200_000 + ",2,3\n")
    with pytest.raises(LawInputError, match="line"):
        laws.read_runs_csv(path)


@pytest.mark.parametrize(
    "content",
    [
        "params,tokens,loss,group\n1e6,2e7,3.1,caf\xe9\n".encode("latin-1"),
        b"params,tokens,loss\n" + b"1" * 200_000 + b",2,3\n",
    ],
    ids=["latin1", "huge-cell"],
)
def test_bad_csv_bytes_exit_2_from_ceiling_fit(tmp_path: Path, content: bytes):
    path = tmp_path / "runs.csv"
    path.write_bytes(content)
    result = CliRunner().invoke(app, ["fit", str(path), "--n-boot", "0"])
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error:") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
