"""A store built once per session from two small inputs, copied for each test that damages or extends it."""

from __future__ import annotations

import shutil

import pytest
from tests.build.test_pipeline import write_input

# The shared store's build options: single cells, 20 per shard (3 shards per input), lenient QC.
BUILD_KW = {"metacell_size": 1, "shard_size": 20, "min_genes": 1, "min_cells": 1, "max_mito_fraction": 1.0}
BUILD_ARGS = ["--metacell-size", "1", "--shard-size", "20", "--min-genes", "1", "--min-cells", "1",
              "--max-mito-fraction", "1"]


@pytest.fixture(scope="session")
def _built_once(tmp_path_factory, tiny_kg_dir):
    from celltosg.build import build_store
    from celltosg.kg import KnowledgeGraph

    base = tmp_path_factory.mktemp("built")
    inputs = [base / f"in{k}.h5ad" for k in range(2)]
    adatas = [write_input(path, seed=k, dataset=f"ds{k}") for k, path in enumerate(inputs)]
    build_store(inputs, base / "store", kg=KnowledgeGraph.load(tiny_kg_dir), **BUILD_KW)
    return base / "store", inputs, adatas


@pytest.fixture()
def built_store(_built_once, tmp_path):
    """(store, input paths, input AnnDatas): a private copy of a store built with ``BUILD_KW`` from two
    48-cell inputs (96 single cells in 6 shards)."""
    store, inputs, adatas = _built_once
    shutil.copytree(store, tmp_path / "store")
    return tmp_path / "store", inputs, adatas
