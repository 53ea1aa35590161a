"""The documented plug-in path: a distribution outside ceiling declares an entry point in the group
``ceiling.architectures`` and its architecture shows up in ``models.available()`` and builds.

The test writes a throwaway installed distribution (a package plus its ``*.dist-info`` with METADATA
and entry_points.txt, exactly what ``pip install`` leaves in site-packages) into a temp dir on sys.path.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import models
from models import registry

PLUGIN_NAME = "tiny-plugin-lm"

MODULE = '''
"""A stand-in third-party architecture: the Transformer's config, builder and sizing under a new name."""
from models import Architecture
from models.transformer import TransformerConfig, build_transformer, size_transformer

ARCHITECTURE = Architecture(
    name="tiny-plugin-lm",
    config_class=TransformerConfig,
    build=build_transformer,
    size_config=size_transformer,
    description="a plug-in architecture installed from outside ceiling",
    paper="none: test fixture",
)
'''


@pytest.fixture()
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A package ``ceiling_tiny_plugin`` and ``ceiling_tiny_plugin-0.1.dist-info`` on sys.path."""
    package = tmp_path / "ceiling_tiny_plugin"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(MODULE))
    dist_info = tmp_path / "ceiling_tiny_plugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ceiling-tiny-plugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text(
        f"[{models.ENTRY_POINT_GROUP}]\n{PLUGIN_NAME} = ceiling_tiny_plugin:ARCHITECTURE\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    # the module-level registry loads plug-ins once per process: give this test a fresh one
    monkeypatch.setattr(registry, "REGISTRY", registry.Registry())
    yield tmp_path
    sys.modules.pop("ceiling_tiny_plugin", None)


def test_entry_point_is_visible_to_importlib_metadata(installed_plugin):
    from importlib import metadata

    names = [ep.name for ep in metadata.entry_points(group=models.ENTRY_POINT_GROUP)]
    assert PLUGIN_NAME in names


def test_plugin_is_listed_sized_and_built(installed_plugin):
    assert PLUGIN_NAME in models.available()
    assert models.available() == sorted(models.available())
    assert {"transformer", "hawk", "griffin", "mega"} <= set(models.available())  # built-ins unaffected
    assert models.get(PLUGIN_NAME).description.startswith("a plug-in")
    torch.manual_seed(0)
    model = models.build(PLUGIN_NAME, size="20k", vocab_size=31, seq_len=8)
    assert abs(model.num_params("non_embedding") / 20_000 - 1) < 0.1
    assert model(torch.zeros(2, 8, dtype=torch.long)).shape == (2, 8, 31)
    info = models.describe(PLUGIN_NAME, size="1M", vocab_size=31)
    assert info["architecture"] == PLUGIN_NAME and abs(info["size_rel_error"]) < 0.1


def test_plugin_is_found_by_a_fresh_interpreter(installed_plugin):
    """What a user gets: nothing registered by hand, just the distribution on the path."""
    code = (
        "import json, models; "
        f"print(json.dumps([models.available(), models.resolve_config('{PLUGIN_NAME}', size='50k', vocab_size=8).n_layers]))"
    )
    repo_root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(installed_plugin), str(repo_root)])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    names, n_layers = json.loads(result.stdout.strip().splitlines()[-1])
    assert PLUGIN_NAME in names and n_layers >= 2
