"""subgraph.html: the page's data against the subgraph, and the page itself in headless Chromium."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from celltosg.explain import core_subgraph, enrichment
from celltosg.explain._html import page_data, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _subgraph(tiny_kg):
    scores = np.full(tiny_kg.n_nodes, np.nan)
    p0 = tiny_kg.n_rna
    best = [p0 + 20, p0 + 21, p0 + 22, 20, 21, p0 + 0, p0 + 5]
    scores[best] = np.linspace(2.0, -1.0, len(best))  # signed: the last ones push away from the class
    sub = core_subgraph(tiny_kg, scores, top_k=12)
    return sub, enrichment(sub.genes, tiny_kg.rna_symbols, tiny_kg.genesets)


def test_page_data_matches_the_subgraph(tiny_kg):
    sub, table = _subgraph(tiny_kg)
    data = page_data(sub, table, tiny_kg)
    assert sorted(n["id"] for n in data["nodes"]) == sorted(sub.core["node_index"].tolist())
    assert len(data["edges"]) == len(sub.edges)
    assert all(np.isfinite([n["x"], n["y"]]).all() for n in data["nodes"])
    node = next(n for n in data["nodes"] if n["id"] == tiny_kg.n_rna + 20)
    assert node["text"] == tiny_kg.nodes["text"].iloc[tiny_kg.n_rna + 20] and node["symbol"] == "GENE20"
    assert data["bound"] == pytest.approx(2.0)
    assert [t["name"] for t in data["terms"]] == table.nsmallest(len(data["terms"]), "p")["term_name"].tolist()


def test_page_is_self_contained(tiny_kg, tmp_path):
    sub, table = _subgraph(tiny_kg)
    page = write_html(sub, table, tiny_kg, tmp_path / "subgraph.html", title="x </script> y").read_text()
    assert "Copyright (c) 2016-2026, The Cytoscape Consortium" in page  # the library is inlined
    assert not re.search(r"<(script|link)[^>]+(src|href)=", page)  # nothing fetched at view time
    data = re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.S).group(1)
    assert len(json.loads(data)["nodes"]) == len(sub.core)
    assert "x </script> y" not in page  # the title is escaped


def _chromium(*args, cwd):
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               f"--user-data-dir={cwd / 'profile'}", "--enable-logging=stderr", "--v=0",
               "--virtual-time-budget=15000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=cwd)


@pytest.mark.skipif(CHROMIUM is None, reason="headless test of subgraph.html needs Debian's `chromium` on PATH "
                                             "(apt-get install chromium); not installed here")
def test_page_renders_in_headless_chromium(tiny_kg, tmp_path):
    from PIL import Image

    sub, table = _subgraph(tiny_kg)
    path = write_html(sub, table, tiny_kg, tmp_path / "subgraph.html")
    term = table.nsmallest(1, "p").iloc[0]
    run = _chromium("--dump-dom", f"{path.as_uri()}#term=0", cwd=tmp_path)
    status = json.loads(re.search(r'<pre id="status">(.*?)</pre>', run.stdout, re.S).group(1))
    assert status["errors"] == [] and status["state"] == "ready", status
    assert status["nodes"] == len(sub.core)
    genes = set(term["genes"].split("|"))
    assert status["term"] == term["term_name"]
    assert status["highlighted"] == sub.core["symbol"].str.upper().isin(genes).sum() > 0
    console_errors = [line for line in run.stderr.splitlines() if "CONSOLE" in line and "rror" in line]
    assert console_errors == []
    shot = tmp_path / "subgraph_screenshot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,800", path.as_uri(), cwd=tmp_path)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.shape[:2] == (800, 1200)
    graph_area = pixels[:, : 1200 - 340]  # left of the side panel
    coloured = (np.ptp(graph_area.astype(int), axis=2) > 60).sum()  # saturated red / blue node pixels
    assert coloured > 100, "no coloured nodes drawn"
