"""Malformed sweep files through the real CLI: exit code 2, one message naming the field, nothing written."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import models
from orchestrator.cli import app
from orchestrator.spec import SpecError, load_spec
from tests.conftest import EXAMPLES

# A valid, tiny spec; every case below breaks exactly one thing in it.
GOOD = """\
name: good
architectures: [transformer]
sizes: [20k]
budgets:
  tokens: [64k]
data:
  seq_len: 64
training:
  batch_tokens: 2048
"""


@dataclass(frozen=True)
class Case:
    id: str
    text: str | None  # None: the file does not exist
    expected: tuple[str, ...]  # substrings of the (whitespace-normalised) message, field path first
    spec_error: bool = True  # False: the spec validates but planning or the corpus rejects it


def _sub(old: str, new: str) -> str:
    assert GOOD.count(old) == 1, old
    return GOOD.replace(old, new)


CASES = [
    Case(
        "unknown-top-level-field",
        GOOD + "epochs: 3\n",
        ("- epochs: unknown field", "remove it or check its spelling"),
    ),
    Case(
        "unknown-nested-field",
        _sub("batch_tokens: 2048", "batch_tokens: 2048\n  lerning_rate: 0.01"),
        ("- training.lerning_rate: unknown field", "remove it or check its spelling"),
    ),
    Case(
        "unknown-architecture",
        _sub("[transformer]", "[transformer, mamab]"),
        ("- architectures[1].name: unknown architecture 'mamab'", "known: " + ", ".join(models.available())),
    ),
    Case(
        "negative-size",
        _sub("sizes: [20k]", "sizes: [-5]"),
        ("- sizes[0]: size (non-embedding parameters) must be positive, got -5",),
    ),
    Case(
        "zero-size",
        _sub("sizes: [20k]", "sizes: [0]"),
        ("- sizes[0]: size (non-embedding parameters) must be positive, got 0",),
    ),
    Case(
        "size-not-a-count",
        _sub("sizes: [20k]", "sizes: [20kb]"),
        ("- sizes[0]: size (non-embedding parameters) '20kb' is not a count", "e.g. '50k', '1.2M', '3B'"),
    ),
    Case(
        "empty-architectures",
        _sub("[transformer]", "[]"),
        ("- architectures: must not be empty; list at least one value",),
    ),
    Case(
        "empty-sizes",
        _sub("sizes: [20k]", "sizes: []"),
        ("- sizes: must not be empty; list at least one value",),
    ),
    Case(
        "missing-name",
        GOOD.replace("name: good\n", ""),
        ("- name: required field is missing; add it",),
    ),
    Case(
        "bad-yaml-syntax",
        _sub("sizes: [20k]", "sizes: [20k\nbudgets2: 1"),
        ("YAML syntax error at line 4, column 9", "fix the indentation or quoting there"),
    ),
    Case(
        "seeds-wrong-type",
        GOOD + "seeds: abc\n",
        ("- seeds: give a count (seeds: 3) or a list of seeds (seeds: [0, 1]), not 'abc'",),
    ),
    Case(
        "seeds-zero-count",
        GOOD + "seeds: 0\n",
        ("- seeds: seeds must be a count >= 1 or a list of seeds, got 0",),
    ),
    Case(
        "duplicate-seeds",
        GOOD + "seeds: [1, 1]\n",
        ("seeds: duplicates in [1, 1]",),
    ),
    Case(
        "zero-token-budget",
        _sub("tokens: [64k]", "tokens: [0]"),
        ("- budgets.tokens[0]: token budget must be positive, got 0",),
    ),
    Case(
        "two-budget-kinds",
        _sub("tokens: [64k]", "tokens: [64k]\n  tokens_per_param: [20]"),
        ("- budgets: give exactly one of tokens", "got ['tokens', 'tokens_per_param']"),
    ),
    Case(
        "no-budget-kind",
        _sub("budgets:\n  tokens: [64k]", "budgets: {}"),
        ("- budgets: give exactly one of tokens", "got none"),
    ),
    Case(
        "missing-budgets",
        _sub("budgets:\n  tokens: [64k]\n", ""),
        ("- budgets: required field is missing; add it",),
    ),
    Case(
        "sweep-name-with-slash",
        _sub("name: good", "name: a/b"),
        ("- name: 'a/b' is not a valid sweep name", "letters, digits, '_', '-' or '.'"),
    ),
    Case(
        "sweep-name-with-dotdot",
        _sub("name: good", "name: ../escape"),
        ("- name: '../escape' is not a valid sweep name", "starting with a letter or digit"),
    ),
    Case(
        "negative-learning-rate",
        _sub("batch_tokens: 2048", "batch_tokens: 2048\n  lr: -0.001"),
        ("- training.lr: learning rate must be in (0, 10), got -0.001",),
    ),
    Case(
        "unknown-schedule",
        _sub("batch_tokens: 2048", "batch_tokens: 2048\n  schedule: linear"),
        ("- training.schedule: Input should be 'wsd', 'cosine' or 'constant' (got 'linear')",),
    ),
    Case(
        "batch-tokens-not-multiple-of-seq-len",
        _sub("batch_tokens: 2048", "batch_tokens: 1000"),
        (
            "training.batch_tokens (1000) must be a multiple of data.seq_len x resources.workers_per_trial "
            "(64 x 1); try 1024",
        ),
    ),
    Case(
        "micro-batch-not-dividing",
        _sub("batch_tokens: 2048", "batch_tokens: 2048\n  micro_batch_size: 5"),
        ("training.micro_batch_size (5) must divide the sequences per worker per step (32)",),
    ),
    Case(
        "top-level-list",
        "- name: good\n- sizes: [20k]\n",
        ("- (top level): expected a mapping of fields (name:, architectures:, ...), got list",),
    ),
    Case(
        "file-not-found",
        None,
        ("file not found:", "missing.yaml", "pass the path of a sweep YAML such as examples/smoke.yaml"),
    ),
    Case(
        "budget-below-min-steps",
        _sub("tokens: [64k]", "tokens: [64k, 4k]"),
        (
            "budgets.tokens[1]: 4e+03 tokens for transformer at size 2e+04",
            "need at least 4 steps: raise the budget or lower training.batch_tokens",
        ),
        spec_error=False,
    ),
    Case(
        "tokens-per-param-below-min-steps",
        _sub("tokens: [64k]", "tokens_per_param: [0.1]"),
        ("budgets.tokens_per_param[0]:", "need at least 4 steps"),
        spec_error=False,
    ),
    Case(
        "missing-corpus",
        _sub("seq_len: 64", "seq_len: 64\n  corpus: no/such/folder"),
        ("data.corpus: 'no/such/folder' does not exist", "use 'stdlib', a text file or folder"),
        spec_error=False,
    ),
]
IDS = [c.id for c in CASES]
SPEC_ERROR_CASES = [c for c in CASES if c.spec_error]
LATE_CASES = [c for c in CASES if not c.spec_error]


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from an empty folder with no store/tracking overrides, so any stray write is visible."""
    for name in ("CEILING_DB", "CEILING_WORKDIR", "CEILING_TRACKING_URI", "RAY_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _write(case: Case, folder: Path) -> Path:
    path = folder / ("missing.yaml" if case.text is None else f"{case.id}.yaml")
    if case.text is not None:
        path.write_text(case.text)
    return path


def _invoke(args: list[str]):
    result = CliRunner().invoke(app, args)
    # rich wraps long lines at the terminal width; compare messages with whitespace normalised.
    return result, " ".join(result.stderr.split())


def _problem_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("  - ")]


def _files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def _assert_message(case: Case, result, message: str) -> None:
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert result.stdout == ""  # errors go to stderr
    assert message.startswith("error: "), message
    for expected in case.expected:
        assert expected in message, f"{expected!r} not in {message!r}"
    if case.spec_error:
        assert len(_problem_lines(result.stderr)) == 1, result.stderr  # one clear message
    assert "Traceback" not in result.output


def test_the_base_spec_is_valid(isolated: Path):
    """Guard: every failure below comes from the one thing each case breaks."""
    (isolated / "good.yaml").write_text(GOOD)
    spec = load_spec(isolated / "good.yaml")
    assert spec.name == "good" and spec.sizes == [20_000.0] and spec.budgets.tokens == [64_000.0]


@pytest.mark.parametrize("case", SPEC_ERROR_CASES, ids=[c.id for c in SPEC_ERROR_CASES])
def test_run_rejects_bad_spec_before_writing_anything(case: Case, isolated: Path):
    spec_file = _write(case, isolated)
    before = _files_under(isolated)
    result, message = _invoke(["run", str(spec_file), "--workdir", str(isolated / "w")])
    _assert_message(case, result, message)
    # Validation happens before any write: not even the work folder is created.
    assert not (isolated / "w").exists()
    assert _files_under(isolated) == before


@pytest.mark.parametrize("case", LATE_CASES, ids=[c.id for c in LATE_CASES])
def test_run_rejects_unplannable_spec_without_a_store(case: Case, isolated: Path):
    spec_file = _write(case, isolated)
    workdir = isolated / "w"
    result, message = _invoke(["run", str(spec_file), "--workdir", str(workdir)])
    _assert_message(case, result, message)
    assert not (workdir / "ceiling.db").exists() and not (workdir / "mlflow.db").exists()
    # At most an empty work folder (see test_plan_error_creates_no_work_folder).
    assert not workdir.exists() or list(workdir.iterdir()) == []
    assert _files_under(isolated) == sorted([spec_file.name] + (["w"] if workdir.exists() else []))


def test_plan_error_creates_no_work_folder(isolated: Path):
    case = next(c for c in LATE_CASES if c.id == "budget-below-min-steps")
    result, _ = _invoke(["run", str(_write(case, isolated)), "--workdir", str(isolated / "w")])
    assert result.exit_code == 2
    assert not (isolated / "w").exists()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_plan_rejects_bad_spec(case: Case, isolated: Path):
    spec_file = _write(case, isolated)
    before = _files_under(isolated)
    result, message = _invoke(["plan", str(spec_file)])
    _assert_message(case, result, message)
    assert _files_under(isolated) == before  # a dry run writes nothing into the current folder


def test_unknown_architecture_lists_every_known_one(isolated: Path):
    case = next(c for c in CASES if c.id == "unknown-architecture")
    with pytest.raises(SpecError) as info:
        load_spec(_write(case, isolated))
    (problem,) = info.value.problems
    known = problem.split("known: ", 1)[1]
    assert known.split(", ") == models.available()


def test_several_problems_are_all_reported(isolated: Path):
    text = _sub("sizes: [20k]", "sizes: []") + "epochs: 3\n"
    spec_file = isolated / "two.yaml"
    spec_file.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(spec_file)
    assert sorted(p.split(":")[0] for p in info.value.problems) == ["epochs", "sizes"]
    assert str(info.value).startswith(f"{spec_file} is invalid:\n  - ")


def test_plan_json_of_the_smoke_example(isolated: Path):
    result = CliRunner().invoke(app, ["plan", str(EXAMPLES / "smoke.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)  # stdout is exactly one JSON document
    assert document["sweep"] == "smoke"
    assert document["vocab_size"] == 257
    trials = document["trials"]
    assert len(trials) == 4
    assert {(t["size_target"], t["tokens"]) for t in trials} == {
        (s, d) for s in (20e3, 50e3) for d in (63488, 126976)
    }
    assert len({t["id"] for t in trials}) == 4
    assert document["total_flops"] == pytest.approx(sum(t["flops_exact"] for t in trials))
    assert all(t["estimated_s"] > 3.0 for t in trials)
    assert _files_under(isolated) == []
