"""The README's Python example runs as written, on a simulated single-donor PBMC file named like the README's."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    """The first ```python block under the README's ``## Python`` heading."""
    match = re.search(r"^## Python\n.*?^```python\n(.*?)^```", README.read_text(), re.S | re.M)
    assert match, "README.md has no ```python block under '## Python'"
    return match.group(1)


def test_readme_python_example_uses_the_model_object():
    code = python_example()
    assert "CellTOSGFM.from_store(" in code and ".predict(adata)" in code and ".embed(adata)" in code
    assert "from celltosg.train" not in code


def test_readme_python_example_runs(tmp_path, monkeypatch):
    import anndata as ad
    import torch

    import celltosg.recipe
    from celltosg.build import simulate

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CELLTOSG_CACHE", str(tmp_path / "cache"))
    # 6,000 genes: just over the 25% of the human pack's RNA nodes that build_store asks of an input
    simulated = simulate(tmp_path / "simulated", n_cells=150, n_donors=1, n_genes=6000, seed=0)
    shutil.copyfile(simulated.files[0], tmp_path / "pbmc.h5ad")
    # the recipe's model and schedule, shrunk so that the example takes seconds
    recipe = celltosg.recipe.RECIPE
    monkeypatch.setattr(celltosg.recipe, "RECIPE", dataclasses.replace(
        recipe, epochs=2, pretrain_epochs=1, patience=1, skip_init="random",
        model={**recipe.model, "readout_dim": 16, "readout_rank": 2}))

    namespace: dict = {}
    try:
        exec(compile(python_example(), str(README), "exec"), namespace)
    finally:
        torch.set_num_threads(threads)

    adata = namespace["adata"]
    truth = ad.read_h5ad(tmp_path / "pbmc.h5ad").obs["cell_type"].astype(str).to_numpy()
    labels = adata.obs["celltosg_label"].astype(str).to_numpy()
    assert set(labels) <= set(truth)
    assert (labels == truth).mean() > 0.8  # planted marker programmes: an easy task
    assert adata.obsm["X_celltosg"].shape == (150, 16)
    saved = tmp_path / "pbmc_model"
    assert {p.name for p in saved.iterdir()} == {"model.ckpt", "metrics.json", "celltosg_model.json"}
    assert json.loads((saved / "metrics.json").read_text())["task"] == "cell_type"
    assert (tmp_path / "explain" / "nodes.csv").is_file() and (tmp_path / "explain" / "subgraph.html").is_file()
    assert np.isfinite(adata.obs["celltosg_probability"].to_numpy()).all()
