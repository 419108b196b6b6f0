"""`celltosg build`, `celltosg store verify` and `celltosg store info --json` from the command line."""

from __future__ import annotations

import json

from tests.build.test_pipeline import write_input
from typer.testing import CliRunner

from celltosg.cli import app


def test_build_verify_info_and_corruption(tmp_path, tiny_kg_dir):
    runner = CliRunner()
    source = tmp_path / "one.h5ad"
    adata = write_input(source)
    adata.obs = adata.obs.rename(columns={"donor_id": "patient"})
    adata.write_h5ad(source)
    out = tmp_path / "store"
    result = runner.invoke(app, ["build", str(source), "--out", str(out), "--pack", str(tiny_kg_dir),
                                 "--metacell-size", "4", "--min-genes", "1", "--min-cells", "1",
                                 "--obs-map", "patient=donor_id", "--shard-size", "5"])
    assert result.exit_code == 0, result.output
    assert "genes mapped 91.1% (41/45)" in result.output

    result = runner.invoke(app, ["store", "verify", str(out)])
    assert result.exit_code == 0 and "every shard matches" in result.output

    result = runner.invoke(app, ["store", "info", str(out), "--json"])
    info = json.loads(result.output)
    assert info["n_nodes"] == 40 and info["n_raw_cells"] == 48
    assert info["expression_bytes"] > 0 and info["n_shards"] == -(-info["n_cells"] // 5)
    assert info["by_disease"].keys() == {"normal", "COVID-19"}
    assert info["by_tissue"] == {"blood": info["n_cells"]}

    chunk = out / "shards" / "one-0001.zarr" / "X" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:-3])
    result = runner.invoke(app, ["store", "verify", str(out)])
    assert result.exit_code == 1 and "corrupt shard one-0001" in result.output


def test_bad_obs_map_is_a_clear_error(tmp_path, tiny_kg_dir):
    from celltosg.errors import MalformedInputError

    result = CliRunner().invoke(app, ["build", str(tmp_path / "x.h5ad"), "--out", str(tmp_path / "s"),
                                      "--pack", str(tiny_kg_dir), "--obs-map", "nonsense"])
    assert isinstance(result.exception, MalformedInputError)
    assert "INPUT_COLUMN=CELLXGENE_COLUMN" in str(result.exception)
