"""Pretraining: trains on train cells only, evaluates on held-out cells, feeds fine-tuning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from celltosg.errors import CheckpointError
from celltosg.model import EdgeMaskingObjective
from celltosg.train import finetune, load_checkpoint, pretrain

from .conftest import make_cohort, small_config


def _rows(X):
    return {tuple(np.round(r, 5)) for r in np.asarray(X)}


def test_pretrain_sees_train_cells_and_scores_held_out_cells(cohort, graph, tmp_path, monkeypatch):
    seen = []
    original = EdgeMaskingObjective.forward

    def spy(self, model, x_rna, generator=None):
        seen.append((self.training, x_rna.detach().numpy().copy()))
        return original(self, model, x_rna, generator)

    monkeypatch.setattr(EdgeMaskingObjective, "forward", spy)
    result = pretrain(cohort, config=small_config(), graph=graph, epochs=2, batch_size=16, mask_fraction=0.2,
                      seed=0, eval_rounds=2, out=tmp_path / "pre.ckpt")
    trained = _rows(np.concatenate([x for training, x in seen if training]))
    scored = _rows(np.concatenate([x for training, x in seen if not training]))
    assert trained == _rows(cohort.X("train"))
    assert scored == _rows(np.concatenate([cohort.X("val"), cohort.X("test")]))
    m = result.metrics
    assert 0.0 <= m["auc"] <= 1.0 and 0.0 < m["ap"] <= 1.0
    assert m["n_held_out"] == len(cohort.X("val")) + len(cohort.X("test"))
    assert len(result.history) == 2 and all(np.isfinite(h["loss"]) for h in result.history)
    payload = load_checkpoint(result.checkpoint)
    assert payload["kind"] == "pretrain" and payload["config"]["n_classes"] == 0


def test_pretraining_lowers_the_edge_loss(cohort, graph):
    result = pretrain(cohort, config=small_config(dropout=0.0), graph=graph, epochs=6, batch_size=8, lr=1e-2,
                      mask_fraction=0.2, seed=0, eval_rounds=1)
    losses = [h["edge_loss"] for h in result.history]
    assert losses[-1] < losses[0]


def test_finetune_starts_from_the_pretrained_encoder(cohort, graph, tmp_path):
    pre = pretrain(cohort, config=small_config(), graph=graph, epochs=1, batch_size=16, mask_fraction=0.2,
                   seed=3, eval_rounds=1, out=tmp_path / "pre.ckpt")
    result = finetune(cohort, task="cell_type", pretrained=pre.checkpoint, freeze_encoder=True,
                      out_dir=tmp_path / "ft", epochs=1, batch_size=16, seed=0)
    encoder = load_checkpoint(pre.checkpoint)["state_dict"]
    tuned = load_checkpoint(result.checkpoint)["state_dict"]
    frozen = [k for k in encoder if not k.startswith(("readout.", "head.", "skip.", "input_"))]
    assert frozen and all(torch.equal(encoder[k], tuned[k]) for k in frozen)


@pytest.mark.parametrize(("pretrained_readout", "tuned_readout"),
                         [("per_node", "per_node"), ("per_node", "pool"), ("pool", "per_node"), ("pool", "pool")])
def test_pretrained_encoder_loads_into_both_readouts(cohort, graph, tmp_path, pretrained_readout, tuned_readout):
    from celltosg.model import AttentionReadout, PerNodeReadout
    from celltosg.train._finetune import prepare

    pre = pretrain(cohort, config=small_config(readout=pretrained_readout), graph=graph, epochs=1, batch_size=16,
                   mask_fraction=0.2, seed=3, eval_rounds=1, out=tmp_path / "pre.ckpt")
    encoder = load_checkpoint(pre.checkpoint)["state_dict"]
    setup = prepare(cohort, task="cell_type", config=small_config(readout=tuned_readout, readout_rank=2),
                    pretrained=pre.checkpoint, seed=0)
    model = setup.model
    assert isinstance(model.readout, PerNodeReadout if tuned_readout == "per_node" else AttentionReadout)
    assert model.config.readout == tuned_readout and model.head.out_features == 3
    state = model.state_dict()
    shared = [k for k in encoder if k.startswith(("fusion.", "internal_layers.", "global_layers."))]
    assert shared and all(torch.equal(encoder[k], state[k]) for k in shared)
    logits = model(torch.from_numpy(cohort.X("test")))["logits"]
    assert logits.shape == (len(cohort.X("test")), 3) and torch.isfinite(logits).all()


def test_pretrained_on_other_genes_is_refused(cohort, graph, tiny_kg, tmp_path):
    pre = pretrain(cohort, config=small_config(), graph=graph, epochs=1, batch_size=32, mask_fraction=0.2,
                   eval_rounds=1, out=tmp_path / "pre.ckpt")
    fewer = tiny_kg.subgraph(list(tiny_kg.rna_symbols[:30]))
    with pytest.raises(CheckpointError, match="genes"):
        finetune(make_cohort(fewer), task="cell_type", pretrained=pre.checkpoint, out_dir=tmp_path / "ft", epochs=1)
