"""The core-subgraph rule: a budget of top_k nodes grown greedily by rank, on graphs with known answers."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from celltosg.explain import core_subgraph, grow_core, top_nodes


def _edges(pairs):
    return np.array(pairs, dtype=np.int64).T


def _ranking(order, n):
    """Ranking vector giving ``order[0]`` the highest score; other nodes NaN (never taken)."""
    ranking = np.full(n, np.nan)
    ranking[list(order)] = np.arange(len(order), 0, -1, dtype=float)
    return ranking


def test_connectors_go_to_the_best_seeds_first():
    # path 0-1-2-3 and 0-4-5; ranking 0, 3, 5, 6 (6 isolated). Budget 5: 0, then 3 via 1, 2 (size 4);
    # 5 needs connector 4 and itself: size 6 > 5, so it is unconnected; 6 has no path: unconnected
    edges = _edges([(0, 1), (1, 2), (2, 3), (0, 4), (4, 5)])
    seeds, extra, unconnected = grow_core(edges, 7, _ranking([0, 3, 5, 6], 7), top_k=5)
    assert seeds == [0, 3] and extra == [1, 2] and unconnected == [5, 6]
    # budget 6 attaches 5 too and is then full: 6 is never examined; budget 7 lists 6 apart
    assert grow_core(edges, 7, _ranking([0, 3, 5, 6], 7), top_k=6) == ([0, 3, 5], [1, 2, 4], [])
    assert grow_core(edges, 7, _ranking([0, 3, 5, 6], 7), top_k=7) == ([0, 3, 5], [1, 2, 4], [6])


def test_max_connectors_and_promotion():
    # 0-1-2-3-4: seed 4 is three hops beyond 1 ... with max_connectors 2 it cannot join after 0
    edges = _edges([(0, 1), (1, 2), (2, 3), (3, 4)])
    seeds, extra, unconnected = grow_core(edges, 5, _ranking([0, 4, 3, 1], 5), top_k=10, max_connectors=2)
    # 4 is four hops from 0: unconnected; 3 joins via 1, 2; then 1 is promoted from connector to seed
    assert seeds == [0, 3, 1] and extra == [2] and unconnected == [4]


def test_nodes_outside_the_largest_component_do_not_anchor_the_core():
    # 0 has no edge; 1-2 is an island pair; 3-4-5-6 is the largest component
    edges = _edges([(1, 2), (3, 4), (4, 5), (5, 6)])
    seeds, extra, unconnected = grow_core(edges, 7, _ranking([0, 1, 2, 4, 6], 7), top_k=4)
    assert seeds == [4, 6] and extra == [5] and unconnected == [0, 1, 2]


def test_random_graphs_respect_the_budget_and_stay_connected():
    rng = np.random.default_rng(1)
    for trial in range(30):
        n = 30
        graph = nx.gnm_random_graph(n, 45, seed=trial)
        ranking = rng.normal(size=n)
        top_k = int(rng.integers(1, 15))
        seeds, extra, unconnected = grow_core(_edges(list(graph.edges)), n, ranking, top_k=top_k)
        core = set(seeds) | set(extra)
        assert len(core) == len(seeds) + len(extra) <= top_k
        assert not core & set(unconnected)
        if len(core) > 1:
            assert nx.is_connected(graph.subgraph(core))
        # seeds and unconnected are the best nodes in rank order, none skipped
        taken = sorted(seeds + unconnected, key=lambda v: -ranking[v])
        assert set(taken) == set(np.argsort(-ranking)[: len(taken)].tolist())


def test_top_nodes_order_ties_and_nan():
    scores = np.array([0.5, np.nan, 0.9, 0.5, 0.1])
    assert top_nodes(scores, 3).tolist() == [2, 0, 3]
    assert top_nodes(scores, 10).tolist() == [2, 0, 3, 4]


def test_core_subgraph_tables_on_the_tiny_pack(tiny_kg):
    p0 = tiny_kg.n_rna
    scores = np.full(tiny_kg.n_nodes, np.nan)  # unscored nodes are never seeds, only connectors
    seeds = [p0 + 0, p0 + 1, p0 + 5, 3]  # three proteins (0-1 on the PPI ring) and one RNA node
    scores[seeds] = [4.0, 3.0, 2.0, 1.0]
    edge_index = np.array([[p0 + 0, p0 + 1], [p0 + 1, p0 + 0]])
    sub = core_subgraph(tiny_kg, scores, top_k=12, edge_index=edge_index, edge_scores=np.array([0.2, 0.7]))
    nodes = sub.nodes
    assert nodes["node_index"].tolist()[:4] == seeds and nodes["rank"].tolist()[:4] == [1, 2, 3, 4]
    assert nodes.loc[nodes["role"] == "seed", "node_index"].tolist() == seeds
    assert len(nodes) <= 12 and set(nodes["role"]) <= {"seed", "connector"}
    graph = sub.to_networkx()
    assert nx.is_connected(graph)
    # induced: every pack edge among the kept nodes, and no other
    kept = set(nodes["node_index"])
    pack = tiny_kg.edges
    expected = pack[pack["source"].isin(kept) & pack["target"].isin(kept)]
    assert len(sub.edges) == len(expected)
    # the RNA seed 3 reaches the proteins through its own protein p0 + 3
    assert p0 + 3 in kept
    # a budget of 2: the two adjacent best proteins; the others are listed apart
    small = core_subgraph(tiny_kg, scores, top_k=2)
    assert small.nodes["role"].tolist() == ["seed", "seed"] + ["unconnected"] * (len(small.nodes) - 2)
    assert small.core["node_index"].tolist() == [p0, p0 + 1]
    scored = sub.edges[(sub.edges["source"] == p0) & (sub.edges["target"] == p0 + 1)]
    assert scored["score"].tolist() == [0.7]  # the larger of the two directions
    assert pd.isna(sub.edges.loc[sub.edges["kind"] == "internal", "score"]).all()
    assert sub.genes == list(dict.fromkeys(nodes["symbol"]))
