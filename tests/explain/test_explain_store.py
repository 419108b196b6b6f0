"""explain_store and `celltosg explain`: a checkpoint fine-tuned on the tiny store, explained from the store."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from celltosg.errors import UnknownIdentifierError
from celltosg.explain import explain_store


@pytest.fixture(scope="module")
def checkpoint(tiny_store_data, tmp_path_factory):
    """A disease classifier fine-tuned for one epoch on the tiny store (shared by this module's tests)."""
    from celltosg.loader import load_cohort
    from celltosg.model import FMConfig, graph_inputs
    from celltosg.store import TOSGStore
    from celltosg.train import finetune

    with warnings.catch_warnings():  # the tiny store has too few donors for a donor split
        warnings.simplefilter("ignore", UserWarning)
        cohort = load_cohort(TOSGStore.open(tiny_store_data[0]), {}, task="disease", split_by="cell", seed=0)
    kg = cohort.kg
    rng = np.random.default_rng(0)
    graph = graph_inputs(kg, rng.normal(size=(kg.n_nodes, 8)).astype(np.float32),
                         rng.normal(size=(kg.n_nodes, 4)).astype(np.float32), np.ones(kg.n_nodes, bool))
    config = FMConfig(hidden=8, heads=2, layers=1, text_dim=8, seq_dim=4, readout_dim=8)
    result = finetune(cohort, task="disease", config=config, graph=graph, out_dir=tmp_path_factory.mktemp("ft"), epochs=1,
                      batch_size=32, seed=0)
    return result.checkpoint


def test_explain_store_contrast(checkpoint, tiny_store, tmp_path):
    result = explain_store(checkpoint, tiny_store, {"tissue": "lung"}, class_label="asthma",
                           contrast_label="normal", top_k=6, out_dir=tmp_path / "out", max_cells=25,
                           method="attention")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_cells"] == 25 and summary["n_reference_cells"] == 25
    assert summary["method"] == "attention" and result.importance.contrast
    assert len(result.subgraph.core) <= 6
    default = explain_store(checkpoint, tiny_store, {"tissue": "lung"}, class_label="asthma", top_k=6,
                            out_dir=tmp_path / "ig", max_cells=25, n_steps=4)
    assert default.summary["method"] == "gradient_x_input" and default.summary["baseline"] == "mean"
    assert default.summary["n_cells"] == 25 and len(default.subgraph.core) <= 6
    with pytest.raises(UnknownIdentifierError, match="model's classes"):
        explain_store(checkpoint, tiny_store, {}, class_label="flu", out_dir=tmp_path / "x")


def test_cli_explain(checkpoint, tiny_store, tmp_path):
    from typer.testing import CliRunner

    from celltosg.cli import app

    out = tmp_path / "cli"
    args = ["explain", str(checkpoint), str(tiny_store.root), "--where", "tissue=lung", "--where",
            "sex=female", "--class", "asthma", "--top-k", "5", "--out", str(out), "--max-cells", "20"]
    run = CliRunner().invoke(app, args)
    assert run.exit_code == 0, run.output
    assert (out / "subgraph.svg").is_file() and "core subgraph" in run.output
    nodes = __import__("pandas").read_csv(out / "nodes.csv")
    assert nodes["role"].isin(["seed", "connector"]).sum() <= 5
    assert CliRunner().invoke(app, ["explain", "--help"]).exit_code == 0
    bad = CliRunner().invoke(app, args[:-4] + ["--method", "lime", "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "unknown explanation method" in str(bad.exception)
