"""The build cache (xnorgen/toolchain/loader.py) under damage: a cached module whose bytes changed is rebuilt,
not loaded; a cache path that cannot be one is one error line; a cache others can write warns."""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

import xnorgen
from netgen import write_net

build = importlib.import_module("xnorgen.toolchain.loader")     # the module (xnorgen.build is also the API function)

LAYERS = [{"name": "conv", "type": "conv2d", "mode": "xnor", "filters": 4, "kernel": 3, "padding": 1},
          {"name": "flat", "type": "flatten"}, {"name": "fc", "type": "dense", "units": 3, "bias": True}]


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XNORGEN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(build, "_LOADED", {})
    return tmp_path / "cache"


def _module_file(cache):
    (so,) = list(cache.glob("*/_xnorgen_*.so"))
    return so


@pytest.mark.parametrize("damage", ["truncate", "flip a byte", "replace"])
def test_a_damaged_cached_module_is_rebuilt(tmp_path, fresh_cache, damage):
    path = write_net(tmp_path, f"cache_{damage[0]}", (5, 6, 6), LAYERS)
    net = xnorgen.load(path)
    x = np.random.default_rng(0).standard_normal(net.input_shape).astype(np.float32)
    # build in another process: this one must not have the file mapped while it is damaged
    subprocess.run([sys.executable, "-c", f"import xnorgen; xnorgen.build({str(path)!r})"], check=True,
                   env={**os.environ, "XNORGEN_CACHE": str(fresh_cache)})
    so = _module_file(fresh_cache)
    data = bytearray(so.read_bytes())
    if damage == "truncate":
        so.write_bytes(data[: len(data) // 2])
    elif damage == "flip a byte":
        data[len(data) // 2] ^= 0xFF
        so.write_bytes(bytes(data))
    else:
        so.write_bytes(b"\x7fELF not the module xnorgen built")
    y = xnorgen.build(net)(x)
    assert np.abs(y - xnorgen.reference(net, x)).max() <= 1e-4 * max(1.0, np.abs(y).max())
    assert (so.parent / "sha256").read_text().strip() == build._digest(_module_file(fresh_cache))


def _cli(*args, env):
    return subprocess.run([sys.executable, "-m", "xnorgen.cli", *map(str, args)], capture_output=True,
                          text=True, env={**os.environ, **env})


@pytest.mark.parametrize("cache", ["a file", "under a file", "/proc/xnorgen-cache"])
def test_a_cache_path_that_cannot_be_one_is_one_line(tmp_path, cache):
    net = write_net(tmp_path, "cc", (5, 6, 6), LAYERS)
    np.save(tmp_path / "x.npy", np.zeros((5, 6, 6), np.float32))
    (tmp_path / "f").write_text("")
    path = {"a file": tmp_path / "f", "under a file": tmp_path / "f" / "c"}.get(cache, cache)
    r = _cli("run", net, "--input", tmp_path / "x.npy", env={"XNORGEN_CACHE": str(path)})
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: build cache"), r.stderr
    assert "Traceback" not in r.stderr


def test_a_cache_others_can_write_warns(tmp_path, fresh_cache):
    fresh_cache.mkdir()
    fresh_cache.chmod(0o777)
    with pytest.warns(UserWarning, match="writable by other users"):
        build.cache_dir()
    fresh_cache.chmod(0o755)
