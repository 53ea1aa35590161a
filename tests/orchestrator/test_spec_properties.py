"""Property tests of the sweep spec: any input either validates or is a SpecError naming a field.

Generated inputs: random structures at the top level, random values (of every YAML type) in known
fields, random unknown keys at every level, random YAML text, and the same through `ceiling run`,
where a rejected spec must exit 2 without creating the work folder.
"""

from __future__ import annotations

import copy
import math
import re
import typing
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.spec import SpecError, SweepSpec, load_spec, parse_spec, spec_to_dict

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

GOOD = {
    "name": "good",
    "architectures": ["transformer"],
    "sizes": ["20k"],
    "budgets": {"tokens": ["64k"]},
    "data": {"seq_len": 64},
    "training": {"batch_tokens": 2048},
}


def _field_names(model: type[BaseModel], seen: set | None = None) -> set[str]:
    seen = set() if seen is None else seen
    if model in seen:
        return set()
    seen.add(model)
    names: set[str] = set()
    for name, info in model.model_fields.items():
        names.add(name)
        stack = [info.annotation]
        while stack:
            annotation = stack.pop()
            stack.extend(typing.get_args(annotation))
            if isinstance(annotation, type) and issubclass(annotation, BaseModel):
                names |= _field_names(annotation, seen)
    return names


FIELD_NAMES = sorted(_field_names(SweepSpec))
# Integers reach past float range (2**1024): parse_count must reject those too.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**1100), 2**1100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["20k", "1.5M", "1e400", "-3", "nan", "transformer", "mqar", "wsd", "bf16", "zero2-bf16"]
    ),
)
keys = st.one_of(st.text(max_size=10), st.sampled_from(FIELD_NAMES), st.integers(), st.none(), st.booleans())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=12,
)
# (path, what a message about a bad value there must mention: the field or its parent)
KNOWN_PATHS = [
    ("name",),
    ("description",),
    ("architectures",),
    ("architectures", 0),
    ("sizes",),
    ("sizes", 0),
    ("budgets",),
    ("budgets", "tokens"),
    ("budgets", "tokens", 0),
    ("budgets", "tokens_per_param"),
    ("budgets", "isoflop"),
    ("seeds",),
    ("task",),
    ("data",),
    ("data", "seq_len"),
    ("data", "tokenizer"),
    ("data", "val_fraction"),
    ("training",),
    ("training", "lr"),
    ("training", "batch_tokens"),
    ("training", "micro_batch_size"),
    ("training", "schedule"),
    ("training", "max_loss"),
    ("resources",),
    ("resources", "workers_per_trial"),
    ("resources", "cpus_per_worker"),
    ("resources", "placement"),
    ("deepspeed",),
    ("deepspeed", "zero_stage"),
    ("deepspeed", "preset"),
    ("deepspeed", "overrides"),
    ("storage",),
]
# Sub-mappings of GOOD (after filling in defaults) where an unknown key can be planted.
NESTED = [(), ("budgets",), ("data",), ("training",), ("resources",), ("deepspeed",), ("architectures", 0)]


def _set(document: dict, path: tuple, value: object) -> None:
    node = document
    for key in path[:-1]:
        if isinstance(node, list):
            node = node[key]
        else:
            node = node.setdefault(key, {})
            if not isinstance(node, dict | list):
                return
    node[path[-1]] = value


def _check_error(error: SpecError) -> None:
    assert error.problems and all(isinstance(p, str) and p.strip() for p in error.problems)
    assert str(error).startswith(error.source)


def _parse(document: object) -> SweepSpec | None:
    """parse_spec's contract: a spec or a SpecError, nothing else. Valid specs round-trip (resume)."""
    try:
        spec = parse_spec(document)
    except SpecError as error:
        _check_error(error)
        return None
    again = parse_spec(spec_to_dict(spec))
    assert spec_to_dict(again) == spec_to_dict(spec) or _has_nan(spec_to_dict(spec))
    return spec


def _has_nan(value: object) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_nan(v) for v in value)
    return False


@PROPERTY
@given(st.one_of(values, st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=8)))
def test_any_structure_is_a_spec_or_a_spec_error(document: object):
    _parse(document)


@PROPERTY
@given(st.sampled_from(KNOWN_PATHS), values)
def test_a_bad_value_in_a_known_field_is_reported_at_that_field(path: tuple, value: object):
    document = copy.deepcopy(GOOD)
    _set(document, path, value)
    try:
        parse_spec(document)
    except SpecError as error:
        _check_error(error)
        named = [str(p) for p in path if isinstance(p, str)]
        text = " ".join(error.problems)
        # the field, its parent, or (for a wrong type at the parent) one of the parent's fields
        assert any(re.search(rf"\b{re.escape(n)}\b", text) for n in named), (path, error.problems)


@PROPERTY
@given(st.sampled_from(NESTED), st.text(min_size=1, max_size=12), values)
def test_unknown_keys_at_any_level_are_named_with_their_path(where: tuple, key: str, value: object):
    document = copy.deepcopy(GOOD) | {"architectures": [{"name": "transformer"}]}
    for name in ("resources", "deepspeed"):
        document.setdefault(name, {})
    node = document
    for part in where:
        node = node[part]
    assume(key not in node and key not in type(_model_at(where)).model_fields)
    node[key] = value
    with pytest.raises(SpecError) as info:
        parse_spec(document)
    expected = ""
    for part in (*where, key):
        expected += f"[{part}]" if isinstance(part, int) else ("." if expected else "") + part
    assert any(p.startswith(f"{expected}: unknown field") for p in info.value.problems), info.value.problems


def _model_at(where: tuple) -> BaseModel:
    spec = parse_spec(GOOD)
    node: object = spec
    for part in where:
        node = node[part] if isinstance(part, int) else getattr(node, part)
    return node  # type: ignore[return-value]


yaml_texts = st.one_of(
    st.text(max_size=200),
    values.map(lambda v: yaml.safe_dump(v, allow_unicode=True)),
    st.builds(
        lambda at, junk: yaml.safe_dump(GOOD)[:at] + junk + yaml.safe_dump(GOOD)[at:],
        st.integers(0, 120),
        st.text(max_size=16),
    ),
    st.dictionaries(st.text(max_size=8), values, max_size=3).map(lambda v: yaml.safe_dump(GOOD | v)),
)


@PROPERTY
@given(yaml_texts)
def test_any_yaml_text_is_a_spec_or_a_spec_error(tmp_path_factory: pytest.TempPathFactory, text: str):
    path = tmp_path_factory.mktemp("yaml") / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_spec(path)
    except SpecError as error:
        _check_error(error)
        assert str(path) in str(error)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(KNOWN_PATHS), values)
def test_a_rejected_spec_through_the_cli_exits_2_and_writes_nothing(
    tmp_path_factory: pytest.TempPathFactory, path: tuple, value: object
):
    document = copy.deepcopy(GOOD)
    _set(document, path, value)
    try:
        parse_spec(document)
        assume(False)  # a valid spec would train: not here
    except SpecError:
        pass
    folder = tmp_path_factory.mktemp("cli")
    spec_file = folder / "sweep.yaml"
    spec_file.write_text(yaml.safe_dump(document, allow_unicode=True))
    work = folder / "work"
    result = CliRunner().invoke(app, ["run", str(spec_file), "--workdir", str(work), "--json"])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and "Traceback" not in result.output
    assert result.stdout == ""  # --json: nothing on stdout for a rejected spec
    assert not work.exists()


def test_yaml_is_safe_loaded(tmp_path: Path):
    marker = tmp_path / "pwned"
    spec_file = tmp_path / "evil.yaml"
    spec_file.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(SpecError, match="YAML syntax error"):
        load_spec(spec_file)
    assert not marker.exists()


def test_an_integer_beyond_float_range_is_a_spec_error():
    with pytest.raises(SpecError, match=r"sizes\[0\]: .*too large") as info:
        parse_spec(GOOD | {"sizes": [10**400]})
    assert len(str(info.value)) < 300


def test_a_huge_seed_count_is_refused_before_it_is_expanded():
    with pytest.raises(SpecError, match=r"seeds: .*too many") as info:
        parse_spec(GOOD | {"seeds": 10**12})
    assert len(str(info.value)) < 300


def test_a_file_that_is_not_utf8_is_a_spec_error(tmp_path: Path):
    spec_file = tmp_path / "latin1.yaml"
    spec_file.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8.*line 1"):
        load_spec(spec_file)


def test_a_yaml_alias_bomb_gives_a_bounded_error(tmp_path: Path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    spec_file = tmp_path / "bomb.yaml"
    spec_file.write_text("\n".join(lines) + "\nname: *a5\n")  # 10^6 leaves from ~400 bytes
    with pytest.raises(SpecError, match="aliases") as info:
        load_spec(spec_file)
    assert len(str(info.value)) < 20_000


def test_a_wrongly_typed_deep_value_is_reported_briefly():
    nested = [[["x"] * 50] * 50] * 50  # shared lists, as YAML aliases build them: ~700 kB if printed whole
    with pytest.raises(SpecError, match="name") as info:
        parse_spec(GOOD | {"name": nested})
    assert len(str(info.value)) < 2_000


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("name: caf\xe9\n".encode("latin-1"), "not UTF-8"),
        (yaml.safe_dump(GOOD | {"sizes": [10**400]}).encode(), "too large"),
    ],
    ids=["latin1", "huge-int"],
)
def test_bad_spec_bytes_exit_2_with_one_clear_line(tmp_path: Path, content: bytes, needle: str):
    spec_file = tmp_path / "sweep.yaml"
    spec_file.write_bytes(content)
    result = CliRunner().invoke(app, ["run", str(spec_file), "--workdir", str(tmp_path / "work")])
    assert result.exit_code == 2, result.output
    assert needle in result.output and "Traceback" not in result.output
    assert not (tmp_path / "work").exists()


def test_an_unknown_key_that_looks_like_a_pydantic_tag_is_still_named():
    # Found by hypothesis: 'dict[' was dropped from the path as if it were pydantic's own union tag.
    from orchestrator.spec import SpecError, parse_spec

    with pytest.raises(SpecError) as info:
        parse_spec(
            {
                "name": "x",
                "architectures": ["transformer"],
                "sizes": [1000],
                "budgets": {"tokens": [1e6]},
                "dict[": 1,
            }
        )
    assert info.value.problems == [
        "dict[: unknown field; remove it or check its spelling (see `ceiling run --help` and examples/)"
    ]
