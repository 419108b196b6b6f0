"""Fixtures for training tests: a small learnable cohort over the tiny pack and its graph inputs."""

from __future__ import annotations

import numpy as np
import pytest

from celltosg.train import InMemoryCohort

N_CLASSES = 3


def make_cohort(kg, *, n_cells: int = 60, seed: int = 0) -> InMemoryCohort:
    """Cells of three classes, each raising its own block of genes; a seeded 60/20/20 split."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_cells) % N_CLASSES
    X = rng.gamma(1.0, 0.5, size=(n_cells, kg.n_rna)).astype(np.float32)
    block = kg.n_rna // N_CLASSES
    for c in range(N_CLASSES):
        X[np.ix_(labels == c, np.arange(c * block, (c + 1) * block))] += 2.0
    split = np.array(["train"] * 3 + ["val"] + ["test"])[rng.permutation(np.arange(n_cells) % 5)]
    names = np.array(["alpha", "beta", "gamma"])[labels]
    return InMemoryCohort(np.log1p(X), split, kg, labels=names)


def make_graph(kg, *, seed: int = 0, seq_dim: int = 8, text_dim: int = 16):
    """GraphInputs of ``kg`` with seeded random text and sequence features (no text model needed)."""
    from celltosg.model import graph_inputs

    rng = np.random.default_rng(seed)
    text = rng.normal(size=(kg.n_nodes, text_dim)).astype(np.float32)
    seq = rng.normal(size=(kg.n_nodes, seq_dim)).astype(np.float32)
    mask = np.zeros(kg.n_nodes, dtype=bool)
    mask[kg.n_rna::2] = True
    return graph_inputs(kg, text, seq, mask)


def small_config(**overrides):
    """A small, fast FMConfig matching :func:`make_graph`."""
    from celltosg.model import FMConfig

    values = dict(hidden=8, heads=2, layers=1, text_dim=16, seq_dim=8, readout_dim=8, dropout=0.1)
    values.update(overrides)
    return FMConfig(**values)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, and OpenMP spinning hurts on a shared 2-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def cohort(tiny_kg):
    return make_cohort(tiny_kg)


@pytest.fixture()
def graph(tiny_kg):
    return make_graph(tiny_kg)
