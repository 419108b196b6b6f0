"""Row 5: `store verify` on an unfinished (killed) build checks the shards of its finished inputs and
calls only shards that no record lists unlisted."""

from __future__ import annotations

import json

from tests.build.test_pipeline import write_input

from celltosg.build import build_store
from celltosg.store import verify_store

QC_KW = {"min_genes": 1, "min_cells": 1, "max_mito_fraction": 1.0}


def test_verify_checks_the_finished_inputs_of_an_unfinished_build(tmp_path, tiny_kg):
    paths = [tmp_path / f"in{k}.h5ad" for k in range(2)]
    for k, path in enumerate(paths):
        write_input(path, seed=k, dataset=f"ds{k}")
    store = build_store(paths, tmp_path / "store", kg=tiny_kg, metacell_size=4, **QC_KW).root
    # what a build killed after its first input leaves: that input's record, no store-level shard list,
    # and the second input's shard written but never recorded
    manifest = json.loads((store / "manifest.json").read_text())
    first = next(key for key, record in manifest["inputs"].items() if record["path"].endswith("in0.h5ad"))
    manifest.update(complete=False, shards=[], files={}, inputs={first: manifest["inputs"][first]})
    (store / "manifest.json").write_text(json.dumps(manifest))
    chunk = store / "shards" / "in0-0000.zarr" / "X" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-2])

    problems = verify_store(store)
    assert any(p.startswith("the build is incomplete: it was interrupted") for p in problems), problems
    assert any("corrupt shard in0-0000" in p for p in problems), problems
    assert any("damaged shard in0-0000" in p for p in problems), problems
    unlisted = [p for p in problems if p.startswith("unlisted shard")]
    assert len(unlisted) == 1 and "in1-0000.zarr" in unlisted[0], problems
