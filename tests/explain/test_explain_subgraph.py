"""The core-subgraph rule: top-k seeds plus the fewest connecting nodes, on graphs with known answers."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd

from celltosg.explain import connectors, core_subgraph, top_nodes


def _edges(pairs):
    return np.array(pairs, dtype=np.int64).T


def test_connects_components_by_the_shortest_bridge():
    # seeds {0,1} (adjacent), {5}, {7}; 1-2-5 needs one connector, 0-3-4-6-5 needs three;
    # 7 lives in another component (with 8) and stays isolated; 9 has no edges
    edges = _edges([(0, 1), (1, 2), (2, 5), (0, 3), (3, 4), (4, 6), (6, 5), (7, 8)])
    assert connectors(edges, 10, np.array([0, 1, 5, 7])).tolist() == [2]


def test_one_hub_beats_two_chains():
    # seeds 0, 1, 2 all touch hub 3 (one connector); chains 0-4-5-1 and 1-6-7-2 would need four
    edges = _edges([(0, 3), (1, 3), (2, 3), (0, 4), (4, 5), (5, 1), (1, 6), (6, 7), (7, 2)])
    assert connectors(edges, 8, np.array([0, 1, 2])).tolist() == [3]


def test_connected_seeds_need_no_connectors():
    edges = _edges([(0, 1), (1, 2), (2, 3), (3, 0)])
    assert connectors(edges, 4, np.array([0, 1, 2])).size == 0


def test_random_graphs_come_out_connected_and_near_optimal():
    from itertools import combinations

    rng = np.random.default_rng(1)
    for trial in range(20):
        graph = nx.gnm_random_graph(14, 20, seed=trial)
        if not nx.is_connected(graph):
            continue
        seeds = rng.choice(14, size=3, replace=False)
        found = connectors(_edges(list(graph.edges)), 14, seeds)
        assert nx.is_connected(graph.subgraph(set(seeds.tolist()) | set(found.tolist())))
        others = [v for v in range(14) if v not in seeds]
        best = next(size for size in range(len(others) + 1) for extra in combinations(others, size)
                    if nx.is_connected(graph.subgraph(set(seeds.tolist()) | set(extra))))
        assert len(found) <= 2 * best + 1  # Mehlhorn: at most twice the optimal tree


def test_top_nodes_order_ties_and_nan():
    scores = np.array([0.5, np.nan, 0.9, 0.5, 0.1])
    assert top_nodes(scores, 3).tolist() == [2, 0, 3]
    assert top_nodes(scores, 10).tolist() == [2, 0, 3, 4]


def test_core_subgraph_tables_on_the_tiny_pack(tiny_kg):
    p0 = tiny_kg.n_rna
    scores = np.zeros(tiny_kg.n_nodes)
    seeds = [p0 + 0, p0 + 1, p0 + 5, 3]  # three proteins (0-1 on the PPI ring) and one RNA node
    scores[seeds] = [4.0, 3.0, 2.0, 1.0]
    edge_index = np.array([[p0 + 0, p0 + 1], [p0 + 1, p0 + 0]])
    sub = core_subgraph(tiny_kg, scores, top_k=4, edge_index=edge_index, edge_scores=np.array([0.2, 0.7]))
    nodes = sub.nodes
    assert nodes["node_index"].tolist()[:4] == seeds and nodes["rank"].tolist()[:4] == [1, 2, 3, 4]
    assert set(nodes.loc[nodes["role"] == "seed", "node_index"]) == set(seeds)
    graph = sub.to_networkx()
    assert nx.is_connected(graph)
    # induced: every pack edge among the kept nodes, and no other
    kept = set(nodes["node_index"])
    pack = tiny_kg.edges
    expected = pack[pack["source"].isin(kept) & pack["target"].isin(kept)]
    assert len(sub.edges) == len(expected)
    # the RNA seed 3 reaches the proteins through its own protein p0 + 3
    assert p0 + 3 in kept
    scored = sub.edges[(sub.edges["source"] == p0) & (sub.edges["target"] == p0 + 1)]
    assert scored["score"].tolist() == [0.7]  # the larger of the two directions
    assert pd.isna(sub.edges.loc[sub.edges["kind"] == "internal", "score"]).all()
    assert sub.genes == list(dict.fromkeys(nodes["symbol"]))
