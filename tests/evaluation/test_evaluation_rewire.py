from __future__ import annotations

import numpy as np
import pytest

from celltosg.errors import MalformedInputError
from celltosg.evaluation._rewire import double_edge_swap, rewire_knowledge_graph


def _random_simple_graph(n_nodes, n_edges, seed, directed=False):
    rng = np.random.default_rng(seed)
    pairs = set()
    while len(pairs) < n_edges:
        a, b = rng.integers(0, n_nodes, 2)
        if a == b:
            continue
        pairs.add((int(a), int(b)) if directed else (int(min(a, b)), int(max(a, b))))
    return np.array(sorted(pairs)).T


def _degrees(edges, n_nodes):
    return np.bincount(edges[0], minlength=n_nodes), np.bincount(edges[1], minlength=n_nodes)


@pytest.mark.parametrize("directed", [False, True])
def test_swaps_keep_degrees_and_simplicity_but_change_edges(directed):
    n_nodes = 200
    edges = _random_simple_graph(n_nodes, 600, seed=1, directed=directed)
    out = double_edge_swap(edges, n_nodes=n_nodes, directed=directed, seed=3)
    assert out.shape == edges.shape
    if directed:
        assert np.array_equal(_degrees(out, n_nodes)[0], _degrees(edges, n_nodes)[0])
        assert np.array_equal(_degrees(out, n_nodes)[1], _degrees(edges, n_nodes)[1])
        pairs = {(int(a), int(b)) for a, b in out.T}
        before = {(int(a), int(b)) for a, b in edges.T}
    else:
        total = lambda e: np.bincount(e.ravel(), minlength=n_nodes)  # noqa: E731
        assert np.array_equal(total(out), total(edges))
        pairs = {(int(min(a, b)), int(max(a, b))) for a, b in out.T}
        before = {(int(min(a, b)), int(max(a, b))) for a, b in edges.T}
    assert len(pairs) == edges.shape[1]  # no duplicate edges
    assert (out[0] != out[1]).all()  # no self-loops
    assert len(pairs & before) < 0.2 * len(before)  # well mixed after 10 swaps per edge


def test_swaps_are_seeded():
    edges = _random_simple_graph(50, 100, seed=0)
    a = double_edge_swap(edges, n_nodes=50, seed=7)
    assert np.array_equal(a, double_edge_swap(edges, n_nodes=50, seed=7))
    assert not np.array_equal(a, double_edge_swap(edges, n_nodes=50, seed=8))


def test_a_saturated_graph_cannot_change():
    # The complete graph on 5 nodes has no room for a swap; degrees and edges stay as they are.
    edges = np.array([(a, b) for a in range(5) for b in range(a + 1, 5)]).T
    out = double_edge_swap(edges, n_nodes=5, seed=0, max_rounds=20)
    assert {tuple(sorted(p)) for p in out.T.tolist()} == {tuple(p) for p in edges.T.tolist()}


def test_duplicate_edges_are_rejected():
    with pytest.raises(MalformedInputError, match="simple graph"):
        double_edge_swap(np.array([[0, 1, 0], [1, 0, 2]]), n_nodes=3)


def test_rewired_knowledge_graph_keeps_internal_edges_and_degrees(tiny_kg):
    rewired = rewire_knowledge_graph(tiny_kg, seed=0)
    old, new = tiny_kg.edges, rewired.edges
    assert rewired.n_nodes == tiny_kg.n_nodes
    internal_old = old[old.kind == "internal"][["source", "target"]].to_numpy()
    internal_new = new[new.kind == "internal"][["source", "target"]].to_numpy()
    assert np.array_equal(internal_old, internal_new)
    for kind in ("ppi", "ligand_receptor"):
        a = old[old.kind == kind][["source", "target"]].to_numpy()
        b = new[new.kind == kind][["source", "target"]].to_numpy()
        if kind == "ppi":
            assert np.array_equal(np.bincount(a.ravel(), minlength=tiny_kg.n_nodes),
                                  np.bincount(b.ravel(), minlength=tiny_kg.n_nodes))
        else:
            assert np.array_equal(np.sort(a[:, 0]), np.sort(b[:, 0]))
            assert np.array_equal(np.sort(a[:, 1]), np.sort(b[:, 1]))
    ppi_old = {tuple(p) for p in old[old.kind == "ppi"][["source", "target"]].to_numpy().tolist()}
    ppi_new = {tuple(sorted(p)) for p in new[new.kind == "ppi"][["source", "target"]].to_numpy().tolist()}
    assert ppi_new != ppi_old


def test_edgeless_graph_drops_only_signaling_edges_and_the_fm_still_trains(tiny_kg, tiny_store_data):
    from celltosg.evaluation import evaluate_spec
    from celltosg.evaluation._models import model_specs
    from celltosg.evaluation._rewire import drop_signaling_edges
    from celltosg.evaluation._tasks import store_splits

    edgeless = drop_signaling_edges(tiny_kg)
    assert set(edgeless.edges["kind"]) == {"internal"}
    assert len(edgeless.edges) == (tiny_kg.edges["kind"] == "internal").sum() and edgeless.n_nodes == tiny_kg.n_nodes
    split = store_splits(tiny_store_data[0], {}, task="cell_type")(0)
    spec = model_specs(["fm_no_message_passing"], quick=True, budget=1, max_epochs=2)[0]
    row = evaluate_spec(spec, split, seed=0)
    assert row["status"] == "ok" and 0 <= row["accuracy"] <= 1
