"""verify() names missing and corrupt shards; info() counts; the pack checksum is enforced."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from celltosg.errors import StoreError
from celltosg.store import TOSGStore, verify_store


@pytest.fixture()
def store_copy(tiny_store_data, tmp_path):
    root, X = tiny_store_data
    shutil.copytree(root, tmp_path / "store")
    return tmp_path / "store", X


def test_sound_store_verifies_clean(tiny_store):
    assert tiny_store.verify() == []


def test_corrupt_chunk_is_named_and_unreadable(store_copy):
    root, _ = store_copy
    chunk = root / "shards" / "part-0001.zarr" / "X" / "c" / "0" / "0"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))
    problems = verify_store(root)
    assert len(problems) == 1 and problems[0].startswith("corrupt shard part-0001")
    store = TOSGStore.open(root)
    # rows 64..79 are the first chunk of shard part-0001; other shards still read
    assert store.read_rows([0]).shape == (1, 40)
    with pytest.raises(StoreError, match="part-0001"):
        store.read_rows([64])


def test_missing_shard_is_named(store_copy):
    root, _ = store_copy
    shutil.rmtree(root / "shards" / "part-0002.zarr")
    problems = verify_store(root)
    assert any(p.startswith("missing shard part-0002") for p in problems)
    with pytest.raises(StoreError, match="part-0002"):
        TOSGStore.open(root).read_rows([130])


def test_unlisted_shard_and_changed_obs_are_reported(store_copy):
    root, _ = store_copy
    shutil.copytree(root / "shards" / "part-0000.zarr", root / "shards" / "stray.zarr")
    (root / "obs.parquet").write_bytes((root / "obs.parquet").read_bytes() + b"x")
    problems = verify_store(root)
    assert any("unlisted shard stray.zarr" in p for p in problems)
    assert any(p.startswith("corrupt obs.parquet") for p in problems)


def test_incomplete_store_refuses_to_open_and_verify_says_so(store_copy):
    root, _ = store_copy
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["complete"] = False
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StoreError, match="incomplete"):
        TOSGStore.open(root)
    assert any("incomplete" in p for p in verify_store(root))


def test_pack_checksum_mismatch_names_both(store_copy, tmp_path):
    from tests.conftest import make_tiny_pack

    root, _ = store_copy
    other = make_tiny_pack(tmp_path / "other", seed=5)
    recorded = json.loads((root / "manifest.json").read_text())["kg_checksum"]
    with pytest.raises(StoreError) as error:
        TOSGStore.open(root, kg=other)
    from celltosg.kg import KnowledgeGraph

    assert recorded in str(error.value) and KnowledgeGraph.load(other).checksum in str(error.value)


def test_info_counts_match_obs(tiny_store):
    info = tiny_store.info()
    obs = tiny_store.obs
    assert info["n_cells"] == 240 and info["n_nodes"] == 40 and info["n_shards"] == 4
    assert info["n_raw_cells"] == int(obs["n_raw_cells"].sum())
    assert info["by_tissue"] == {"lung": 120, "blood": 120}
    assert info["by_disease"] == {"normal": 120, "asthma": 120}
    assert info["by_cell_type"] == {"T cell": 80, "B cell": 80, "monocyte": 80}
    assert sum(info["by_source"].values()) == 240
    assert info["expression_bytes"] > 0
    assert np.isclose(info["bytes_per_value"], info["expression_bytes"] / (240 * 40))
