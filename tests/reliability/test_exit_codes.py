"""Row 3: `celltosg store verify` exits 1 on every problem: through the installed entry point in a
subprocess, and through ``main()`` in this process for each kind of damage."""

from __future__ import annotations

import shutil

import pytest
from tests.conftest import make_tiny_store
from tests.reliability._cli import run, run_main


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory, tiny_kg_dir):
    from celltosg.kg import KnowledgeGraph

    store, _ = make_tiny_store(tmp_path_factory.mktemp("exit") / "store", KnowledgeGraph.load(tiny_kg_dir))
    return store.root


def _corrupt_chunk(root):
    chunk = root / "shards" / "part-0001.zarr" / "X" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-3])
    return "corrupt shard part-0001"


def _delete_shard(root):
    shutil.rmtree(root / "shards" / "part-0002.zarr")
    return "missing shard part-0002"


def _delete_obs(root):
    (root / "obs.parquet").unlink()
    return "missing obs.parquet"


def _delete_manifest(root):
    (root / "manifest.json").unlink()
    return "no manifest.json"


def test_entry_point_exit_status(tmp_path, sound_store):
    result = run("store", "verify", sound_store)
    assert result.returncode == 0 and "every shard matches" in result.stdout
    root = tmp_path / "store"
    shutil.copytree(sound_store, root)
    message = _corrupt_chunk(root)
    result = run("store", "verify", root)
    assert result.returncode == 1, result
    assert message in result.stdout and "problem(s)" in result.stdout


@pytest.mark.parametrize("damage", [_corrupt_chunk, _delete_shard, _delete_obs, _delete_manifest])
def test_damaged_store_exits_1(tmp_path, sound_store, damage, capsys):
    root = tmp_path / "store"
    shutil.copytree(sound_store, root)
    message = damage(root)
    code, out, _ = run_main(capsys, "store", "verify", root)
    assert code == 1
    assert message in out and "problem(s)" in out
