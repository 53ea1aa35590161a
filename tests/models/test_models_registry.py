"""Registry, overrides, configs and plug-in loading."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import warnings
from types import SimpleNamespace

import pytest

import models
from models.registry import Architecture, Registry
from models.transformer import TransformerConfig, build_transformer, size_transformer


def test_available_is_sorted_and_has_transformer():
    names = models.available()
    assert "transformer" in names
    assert names == sorted(names)


def test_unknown_architecture_lists_known_names():
    with pytest.raises(models.UnknownArchitecture) as info:
        models.build("mamab", size="10k", vocab_size=32)
    assert isinstance(info.value, KeyError) and isinstance(info.value, ValueError)
    message = str(info.value)
    assert "'mamab'" in message and "transformer" in message
    assert not message.startswith('"')  # not KeyError's repr-quoting


def test_unknown_override_lists_valid_fields():
    with pytest.raises(models.UnknownOverride) as info:
        models.resolve_config("transformer", size="10k", vocab_size=32, n_layer=4)
    message = str(info.value)
    assert "n_layer" in message and "n_layers" in message and "d_model" in message
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    "overrides",
    [
        {"n_layers": 4},
        {"d_model": 64},
        {"n_layers": 3, "d_model": 48},
        {"tie_embeddings": True, "seq_len": 64},
        {"n_kv_heads": 1},
        {"ffn_hidden": 100},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_overrides_replace_config_fields(overrides):
    config = models.resolve_config("transformer", size="100k", vocab_size=32, **overrides)
    for key, value in overrides.items():
        assert getattr(config, key) == value


def test_override_that_fixes_depth_still_hits_the_size():
    config = models.resolve_config("transformer", size="1M", vocab_size=32, n_layers=6)
    assert config.n_layers == 6
    assert abs(config.non_embedding_params() / 1_000_000 - 1) < 0.1


def test_impossible_override_names_the_problem():
    with pytest.raises(ValueError, match="n_heads"):
        models.resolve_config("transformer", size="100k", vocab_size=32, d_model=64, n_heads=7)


@pytest.mark.parametrize("vocab_size", [0, -3, 2.5, True], ids=repr)
def test_bad_vocab_size(vocab_size):
    with pytest.raises(ValueError, match="vocab_size"):
        models.resolve_config("transformer", size="10k", vocab_size=vocab_size)


def test_config_is_frozen_keyword_only_and_round_trips():
    config = models.resolve_config("transformer", size="50k", vocab_size=32)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.n_layers = 3
    with pytest.raises(TypeError):
        TransformerConfig(32, 64, 2)  # keyword-only
    assert TransformerConfig.from_dict(config.to_dict()) == config
    model = models.from_config("transformer", config.to_dict())
    assert model.config == config
    with pytest.raises(ValueError, match="valid fields"):
        TransformerConfig.from_dict({**config.to_dict(), "n_layer": 2})


def test_import_models_is_light():
    code = "import sys, models; models.available(); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- plug-ins -------------------------------------------------------------------------------------------


def _record(name: str) -> Architecture:
    return Architecture(
        name=name,
        config_class=TransformerConfig,
        build=build_transformer,
        size_config=size_transformer,
        description=f"test plug-in {name}",
    )


def _entry_point(name: str, loaded):
    def load():
        if isinstance(loaded, Exception):
            raise loaded
        return loaded

    return SimpleNamespace(name=name, value=f"fake_module:{name}", load=load)


def test_entry_point_plugins_load_lazily_and_broken_ones_warn():
    registry = Registry(builtins={"transformer": "models.transformer:ARCHITECTURE"})
    calls = []

    def register_many():
        calls.append("called")
        return [_record("plug-b"), _record("plug-c")]

    fake = [
        _entry_point("plug-a", _record("plug-a")),
        _entry_point("plug-bc", register_many),
        _entry_point("broken", ImportError("no module named fake_module")),
        _entry_point("clash", _record("transformer")),
    ]
    registry._entry_points = lambda: fake
    assert calls == []  # nothing loaded before the first lookup
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = registry.available()
    assert names == ["plug-a", "plug-b", "plug-c", "transformer"]
    assert calls == ["called"]
    messages = " ".join(str(w.message) for w in caught)
    assert "broken" in messages and "no module named fake_module" in messages
    assert "clash" in messages and "taken by a built-in" in messages
    assert registry.get("plug-b").description == "test plug-in plug-b"
    registry.available()
    assert calls == ["called"]  # loaded once


def test_register_rejects_a_second_record_with_a_taken_name():
    registry = Registry(builtins={}, entry_point_group=None)
    registry.register(_record("dup"))
    registry.register(_record("dup"))  # an equal record again is a no-op (re-imported module)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(dataclasses.replace(_record("dup"), description="another"))


@pytest.mark.parametrize("name", ["Bad", "has space", ""], ids=repr)
def test_architecture_names_are_validated(name):
    with pytest.raises(ValueError, match="architecture name"):
        _record(name)
