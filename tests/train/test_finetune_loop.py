"""Fine-tuning: reproducibility, exact resume, validation-only selection, one optimiser, frozen encoder."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from celltosg.errors import CheckpointError, SplitError
from celltosg.train import InMemoryCohort, finetune, load_checkpoint

from .conftest import small_config

FAST = dict(epochs=3, batch_size=16, lr=3e-3, patience=10, seed=7)


def _run(cohort, graph, out_dir, **kwargs):
    return finetune(cohort, task="cell_type", graph=graph, out_dir=out_dir,
                    **{"config": small_config(), **FAST, **kwargs})


def test_same_seed_same_metrics_and_written_json(cohort, graph, tmp_path):
    a = _run(cohort, graph, tmp_path / "a")
    b = _run(cohort, graph, tmp_path / "b")
    assert a.metrics["history"] == b.metrics["history"]
    assert a.metrics["test"] == b.metrics["test"]
    written = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert written["test"]["confusion_matrix"] == a.metrics["test"]["confusion_matrix"]
    assert set(written["test"]["per_class_f1"]) == {"alpha", "beta", "gamma"}
    # the confusion matrix counts every test cell once
    assert np.sum(written["test"]["confusion_matrix"]) == len(cohort.labels("test"))
    c = _run(cohort, graph, tmp_path / "c", seed=8)
    assert c.metrics["history"] != a.metrics["history"]


class _Interrupt:
    """Stops a run (as Ctrl-C would) at the first batch of its third epoch."""

    def __init__(self, batches_per_epoch: int):
        self.calls, self.limit = 0, 2 * batches_per_epoch

    def on_train_batch(self, batch):
        self.calls += 1
        if self.calls > self.limit:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_to_identical_metrics(cohort, graph, tmp_path):
    full = _run(cohort, graph, tmp_path / "full", epochs=4)
    per_epoch = -(-len(cohort.labels("train")) // FAST["batch_size"])
    with pytest.raises(KeyboardInterrupt):
        _run(cohort, graph, tmp_path / "resumed", epochs=4, callbacks=[_Interrupt(per_epoch)])
    state = load_checkpoint(tmp_path / "resumed" / "last.ckpt", required=("epoch",))
    assert state["epoch"] == 2 and not (tmp_path / "resumed" / "metrics.json").exists()
    resumed = _run(cohort, graph, tmp_path / "resumed", epochs=4)
    assert resumed.metrics["history"] == full.metrics["history"]
    assert resumed.metrics["test"] == full.metrics["test"]
    final_full = load_checkpoint(full.checkpoint)["state_dict"]
    final_resumed = load_checkpoint(resumed.checkpoint)["state_dict"]
    assert all(torch.equal(final_full[k], final_resumed[k]) for k in final_full)


def test_resume_refuses_other_settings(cohort, graph, tmp_path):
    _run(cohort, graph, tmp_path / "run", epochs=1)
    with pytest.raises(CheckpointError, match="other settings"):
        _run(cohort, graph, tmp_path / "run", epochs=1, lr=1e-2)
    _run(cohort, graph, tmp_path / "run", epochs=1, lr=1e-2, resume=False)  # starting over is allowed


def test_selection_never_looks_at_test_labels(cohort, graph, tmp_path):
    """Permuting the test labels changes test metrics but not the trajectory or the selected epoch."""
    rng = np.random.default_rng(0)
    shuffled = cohort.obs["label"].to_numpy().copy()
    test = (cohort.obs["split"] == "test").to_numpy()
    shuffled[test] = rng.permutation(shuffled[test])
    other = InMemoryCohort(cohort._X, cohort.obs["split"],
                           cohort.kg, labels=shuffled)
    a = _run(cohort, graph, tmp_path / "a", epochs=4)
    b = _run(other, graph, tmp_path / "b", epochs=4)
    assert a.metrics["history"] == b.metrics["history"]
    assert a.metrics["best_epoch"] == b.metrics["best_epoch"]
    assert a.metrics["val"] == b.metrics["val"]


def test_best_epoch_is_the_best_validation_epoch(cohort, graph, tmp_path):
    result = _run(cohort, graph, tmp_path / "run", epochs=4)
    history = result.metrics["history"]
    best = max(history, key=lambda h: (h["val_macro_f1"], -h["val_loss"]))
    assert result.metrics["best_epoch"] == best["epoch"]


def test_one_optimiser_for_the_whole_run(cohort, graph, tmp_path, monkeypatch):
    made = []
    original = torch.optim.AdamW

    class Counting(original):
        def __init__(self, *args, **kwargs):
            made.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", Counting)
    _run(cohort, graph, tmp_path / "run", epochs=2)
    assert len(made) == 1


def test_early_stopping_honours_patience(cohort, graph, tmp_path):
    result = _run(cohort, graph, tmp_path / "run", epochs=6, patience=1, lr=0.0)
    # with lr 0 nothing improves after epoch 0, so one stale epoch stops the run
    assert result.metrics["epochs_run"] == 2 and result.metrics["best_epoch"] == 0


def test_frozen_encoder_trains_only_readout_and_head(cohort, graph, tmp_path):
    from celltosg.model import CellTOSGFM

    torch.manual_seed(FAST["seed"])
    initial = CellTOSGFM(graph, small_config(n_classes=3)).state_dict()
    result = _run(cohort, graph, tmp_path / "run", freeze_encoder=True, epochs=2)
    final = load_checkpoint(result.checkpoint)["state_dict"]
    changed = {k for k in final if not torch.equal(final[k], initial[k])}
    assert changed and all(k.startswith(("readout.", "head.", "skip.", "input_")) for k in changed)


def test_standardisation_statistics_come_from_the_train_split_only(tiny_kg, graph, tmp_path):
    """Val and test cells are shifted far away: any leak into the statistics moves them off the train ones."""
    from .conftest import make_cohort

    base = make_cohort(tiny_kg)
    split = base.obs["split"].to_numpy()
    X = np.concatenate([base.X(s) for s in ("train", "val", "test")])
    order = np.concatenate([np.flatnonzero(split == s) for s in ("train", "val", "test")])
    X_all = np.empty_like(X)
    X_all[order] = X
    held_out = split != "train"
    X_all[held_out] = X_all[held_out] * 3.0 + 5.0
    cohort = InMemoryCohort(X_all, split, tiny_kg, labels=base.obs["label"].to_numpy())
    train = X_all[split == "train"].astype(np.float64)
    result = _run(cohort, graph, tmp_path / "run", epochs=1)
    state = load_checkpoint(result.checkpoint)["state_dict"]
    np.testing.assert_allclose(state["input_mean"].numpy(), train.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state["input_scale"].numpy(), train.std(0), rtol=1e-4, atol=1e-6)
    off = _run(cohort, graph, tmp_path / "off", epochs=1, config=small_config(standardize=False))
    off_state = load_checkpoint(off.checkpoint)["state_dict"]
    assert torch.equal(off_state["input_mean"], torch.zeros(tiny_kg.n_rna))


def test_single_class_cohort_is_refused(tiny_kg, graph, tmp_path):
    n = 20
    cohort = InMemoryCohort(np.ones((n, tiny_kg.n_rna)), ["train", "val", "test", "train"] * 5, tiny_kg,
                            labels=["only"] * n)
    with pytest.raises(SplitError, match="at least two"):
        _run(cohort, graph, tmp_path / "run")
