"""Fixtures of the model tests: GraphInputs of the tiny pack with random frozen features."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from celltosg.model import graph_inputs

TEXT_DIM, SEQ_DIM = 16, 8


def random_features(kg, seed: int = 0):
    """Random text (N, TEXT_DIM), sequence features (N, SEQ_DIM) and the mask of nodes with a sequence."""
    rng = np.random.default_rng(seed)
    text = rng.normal(size=(kg.n_nodes, TEXT_DIM)).astype(np.float32)
    seq = rng.normal(size=(kg.n_nodes, SEQ_DIM)).astype(np.float32)
    mask = np.zeros(kg.n_nodes, dtype=bool)
    mask[kg.sequences["node_index"].to_numpy()] = True
    return text, seq, mask


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads; on a busy machine spinning threads make them slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def tiny_graph(tiny_kg):
    """GraphInputs of the tiny pack (40 RNA + 34 protein nodes)."""
    return graph_inputs(tiny_kg, *random_features(tiny_kg))
