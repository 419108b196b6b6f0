"""The demo report's explanation section: top 20 genes with scores, the figure and the interactive view."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from celltosg.demo import _explanation_lines


def test_explanation_section_lists_genes_and_links_the_views():
    genes = [{"symbol": f"G{i}", "score": 1.0 / (i + 1), "rank": 2 * i + 1} for i in range(20)]
    summary = {"method": "gradient_x_input", "baseline": "mean", "n_cells": 7, "top_k": 30, "n_seeds": 25,
               "n_connectors": 5, "n_unconnected": 2, "top_genes": genes}
    enrichment = pd.DataFrame({"collection": ["GO_BP"], "term_name": ["immune response"], "overlap": [3],
                               "p": [1e-4], "q": [1e-3]})
    text = "\n".join(_explanation_lines(SimpleNamespace(summary=summary, enrichment=enrichment)))
    assert all(f"| G{i} " in text for i in range(20)) and "G20" not in text
    assert "0.3333" in text  # G2's score
    assert "](explain/subgraph.html)" in text and "![subgraph](explain/subgraph.png)" in text
    assert "immune response" in text and "25 seeds, 5 connectors" in text
