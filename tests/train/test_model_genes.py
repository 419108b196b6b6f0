"""The genes a model reads: the most variable training genes on a large cohort, a checkpoint's genes after it."""

from __future__ import annotations

import numpy as np
import torch

from celltosg.train import finetune, load_checkpoint, pretrain
from tests.train.conftest import make_graph, small_config


def _train_variance_top(cohort, k: int) -> list[str]:
    """Node ids of the k genes with the largest variance over the train rows (a plain numpy reference)."""
    X = cohort.X("train").astype(np.float64)
    top = np.sort(np.argsort(-X.var(axis=0), kind="stable")[:k])
    return [str(i) for i in cohort.kg.nodes["node_id"].to_numpy()[top]]


def test_finetune_reads_the_most_variable_train_genes_and_pretraining_fixes_them(cohort, tmp_path, monkeypatch):
    monkeypatch.setattr("celltosg.train._finetune.build_graph_inputs", lambda kg, seq_dim: make_graph(kg))
    monkeypatch.setattr("celltosg.train._pretrain.build_graph_inputs", lambda kg, seq_dim: make_graph(kg))
    expected = _train_variance_top(cohort, 12)
    tuned = finetune(cohort, task="cell_type", config=small_config(), out_dir=tmp_path / "ft", epochs=1, max_genes=12)
    payload = load_checkpoint(tuned.checkpoint)
    assert payload["rna_node_ids"] == expected
    assert payload["state_dict"]["skip.weight"].shape == torch.Size([3, 12])

    pre = pretrain(cohort, config=small_config(), epochs=1, batch_size=32, eval_rounds=1, max_genes=12,
                   out=tmp_path / "pre.ckpt")
    again = finetune(cohort, task="cell_type", config=small_config(), out_dir=tmp_path / "ft2", epochs=1,
                     pretrained=pre.checkpoint, max_genes=0)  # the checkpoint's genes win over max_genes
    assert load_checkpoint(again.checkpoint)["rna_node_ids"] == expected
    every = finetune(cohort, task="cell_type", config=small_config(), out_dir=tmp_path / "ft3", epochs=1, max_genes=0)
    assert len(load_checkpoint(every.checkpoint)["rna_node_ids"]) == cohort.kg.n_rna
