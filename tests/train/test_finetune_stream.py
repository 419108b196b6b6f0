"""Streaming fine-tuning: batches from the store through the loader's streaming datamodule, every training
row once per epoch, and the same standardisation statistics as the in-memory path."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from celltosg.errors import SplitError
from celltosg.loader import load_cohort
from celltosg.train import finetune, input_scaling, load_checkpoint

from .conftest import make_graph, small_config


class _Rows:
    """Counts how often each training row is drawn."""

    def __init__(self):
        self.seen = Counter()

    def on_train_batch(self, batch):
        self.seen.update(batch[2].tolist())


@pytest.fixture()
def lung(tiny_store):
    return load_cohort(tiny_store, {"tissue_general": "lung"}, task="cell_type", min_class_size=2, seed=1)


def _run(cohort, out_dir, **kwargs):
    return finetune(cohort, task="cell_type", out_dir=out_dir, config=small_config(), graph=make_graph(cohort.kg),
                    epochs=2, batch_size=8, seed=3, skip_init="random", **kwargs)


def test_streamed_training_reads_every_train_row_once_per_epoch(lung, tmp_path):
    rows = _Rows()
    result = _run(lung, tmp_path / "stream", stream=True, buffer_size=16, callbacks=[rows])
    n_train = len(lung.positions("train"))
    assert set(rows.seen) == set(range(n_train)) and set(rows.seen.values()) == {2}
    assert result.metrics["n_train"] == n_train and result.metrics["epochs_run"] == 2
    assert result.metrics["test"]["n"] == len(lung.positions("test"))


def test_streamed_statistics_match_the_in_memory_path_and_numpy(lung, tmp_path):
    streamed = load_checkpoint(_run(lung, tmp_path / "s", stream=True).checkpoint)["state_dict"]
    memory = load_checkpoint(_run(lung, tmp_path / "m", stream=False).checkpoint)["state_dict"]
    train = lung.X("train").astype(np.float64)
    for state in (streamed, memory):
        np.testing.assert_allclose(state["input_mean"].numpy(), train.mean(0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(state["input_scale"].numpy(), np.where(train.std(0) > 1e-6, train.std(0), 1),
                                   rtol=1e-4, atol=1e-6)


def test_blockwise_scaling_equals_one_pass_over_the_whole_matrix():
    rng = np.random.default_rng(0)
    X = rng.gamma(1.0, 2.0, size=(103, 7)).astype(np.float32)
    X[:, 3] = 1.5  # constant column: sd 0 becomes 1
    mean, sd = input_scaling(np.array_split(X, [5, 6, 40, 90]))
    np.testing.assert_allclose(mean.numpy(), X.astype(np.float64).mean(0), rtol=1e-6)
    expected = X.astype(np.float64).std(0)
    np.testing.assert_allclose(sd.numpy(), np.where(expected > 1e-6, expected, 1.0), rtol=1e-5)
    assert sd[3] == 1.0 and torch.isfinite(mean).all()


def test_only_store_cohorts_stream(cohort, graph, tmp_path):
    with pytest.raises(SplitError, match="store-backed"):
        finetune(cohort, task="cell_type", out_dir=tmp_path, config=small_config(), graph=graph, epochs=1,
                 stream=True)


class _Interrupt:
    """Stops a run (as Ctrl-C would) at the first batch of its second epoch."""

    def __init__(self, batches_per_epoch: int):
        self.calls, self.limit = 0, batches_per_epoch

    def on_train_batch(self, batch):
        self.calls += 1
        if self.calls > self.limit:
            raise KeyboardInterrupt


def test_interrupted_streamed_run_resumes_exactly(lung, tmp_path):
    full = _run(lung, tmp_path / "full", stream=True, buffer_size=16)
    per_epoch = -(-len(lung.positions("train")) // 8)
    with pytest.raises(KeyboardInterrupt):
        _run(lung, tmp_path / "resumed", stream=True, buffer_size=16, callbacks=[_Interrupt(per_epoch)])
    assert load_checkpoint(tmp_path / "resumed" / "last.ckpt", required=("epoch",))["epoch"] == 1
    resumed = _run(lung, tmp_path / "resumed", stream=True, buffer_size=16)
    assert resumed.metrics["history"] == full.metrics["history"]
    assert resumed.metrics["test"] == full.metrics["test"]


def test_pretraining_streams_too(lung):
    from celltosg.train import pretrain

    streamed = pretrain(lung, config=small_config(), graph=make_graph(lung.kg), epochs=1, batch_size=8, seed=0,
                        stream=True)
    memory = pretrain(lung, config=small_config(), graph=make_graph(lung.kg), epochs=1, batch_size=8, seed=0,
                      stream=False)
    n_held = len(lung.positions("val")) + len(lung.positions("test"))
    for result in (streamed, memory):
        assert result.metrics["n_train"] == len(lung.positions("train")) and result.metrics["n_held_out"] == n_held
        assert 0.0 <= result.metrics["auc"] <= 1.0 and np.isfinite(result.history[0]["loss"])
