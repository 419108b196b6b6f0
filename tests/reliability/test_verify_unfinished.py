"""Row 5: `store verify` on an unfinished (killed) build checks the shards of its finished inputs and
calls only shards that no record lists unlisted."""

from __future__ import annotations

import json

from celltosg.store import verify_store


def test_verify_checks_the_finished_inputs_of_an_unfinished_build(built_store):
    store = built_store[0]
    # what a build killed after its first input leaves: that input's record, no store-level shard list,
    # and a shard of the second input written but never recorded
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
    unlisted = sorted(p.split()[2] for p in problems if p.startswith("unlisted shard"))
    assert unlisted == ["in1-0000.zarr:", "in1-0001.zarr:", "in1-0002.zarr:"], problems
