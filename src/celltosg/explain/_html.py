"""``subgraph.html``: one self-contained page to explore the core subgraph (pan, zoom, hover, term clicks).

The page inlines Cytoscape.js (vendored from its npm package, see ``_vendor/README.md``; MIT licence) and
the subgraph as JSON, so it opens offline from disk. Node positions are the figure's community layout.
Hovering a node shows its symbol, score, type, role and GO text; clicking an enriched term highlights its
genes (``subgraph.html#term=N`` opens with the N-th term selected). The page records its own state in ``<pre id="status">`` (JSON: nodes rendered, errors caught), which
the headless-browser test reads.
"""

from __future__ import annotations

import html
import json
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from celltosg.explain._subgraph import CoreSubgraph
    from celltosg.kg import KnowledgeGraph

CYTOSCAPE_JS = "cytoscape-3.35.0.min.js"
N_TERMS = 25

PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>__TITLE__</title>
<style>
body { margin: 0; font: 13px sans-serif; display: flex; height: 100vh; }
#cy { flex: 1; min-width: 0; }
#side { width: 340px; overflow-y: auto; border-left: 1px solid #ccc; padding: 8px; box-sizing: border-box; }
#tip { position: absolute; display: none; max-width: 360px; background: #fff; border: 1px solid #888;
       padding: 6px; font-size: 12px; pointer-events: none; box-shadow: 2px 2px 4px #aaa; }
.term { cursor: pointer; padding: 3px; border-bottom: 1px solid #eee; }
.term:hover, .term.on { background: #ffe9a8; }
.key span { display: inline-block; margin-right: 8px; }
#status { display: none; }
</style></head><body>
<div id="cy"></div>
<div id="side"><h3>__TITLE__</h3>
<p class="key"><span>&#9679; RNA</span><span>&#9632; protein</span><span>red: towards the class</span>
<span>blue: away from it</span><span>thick outline: seed</span><span>dotted: internal, solid: PPI,
dashed: ligand-receptor</span></p>
<p>Scroll to zoom, drag to pan, hover a node for its details, click a term to highlight its genes (click it
again to clear).</p><h4>Enriched terms (lowest p first)</h4><div id="terms"></div></div>
<div id="tip"></div><pre id="status">{"state": "loading"}</pre>
<script>__CYTOSCAPE__</script>
<script type="application/json" id="data">__DATA__</script>
<script>
(function () {
  var errors = [];
  var status = document.getElementById("status");
  function report(extra) {
    var out = {errors: errors};
    for (var k in extra) { out[k] = extra[k]; }
    status.textContent = JSON.stringify(out);
  }
  window.addEventListener("error", function (e) { errors.push(String(e.message)); report({state: "error"}); });
  try {
    var data = JSON.parse(document.getElementById("data").textContent);
    var bound = data.bound || 1, lin = data.linthresh || bound;
    function colour(score) {  // symmetric log scale, as in the static figure
      var s = score || 0, a = Math.min(1, Math.log(1 + Math.abs(s) / lin) / Math.log(1 + bound / lin));
      var t = s < 0 ? -a : a;
      var r = t > 0 ? 255 : Math.round(255 * (1 - a) + 33 * a), b = t < 0 ? 255 : Math.round(255 * (1 - a) + 33 * a);
      var g = Math.round(255 * (1 - a) + 60 * a);
      return "rgb(" + r + "," + g + "," + b + ")";
    }
    var elements = data.nodes.map(function (n) {
      return {group: "nodes", data: {id: String(n.id), label: n.label ? n.symbol : "", symbol: n.symbol, score: n.score,
              type: n.type, role: n.role, rank: n.rank, text: n.text, colour: colour(n.score)},
              position: {x: n.x, y: n.y}};
    }).concat(data.edges.map(function (e, i) {
      return {group: "edges", data: {id: "e" + i, source: String(e.source), target: String(e.target), kind: e.kind}};
    }));
    var cy = cytoscape({
      container: document.getElementById("cy"), elements: elements, layout: {name: "preset"},
      wheelSensitivity: 0.3,
      style: [
        {selector: "node", style: {"background-color": "data(colour)", "label": "data(label)", "font-size": 11,
          "width": 14, "height": 14, "border-width": 1, "border-color": "#888", "text-valign": "top",
          "text-background-color": "#fff", "text-background-opacity": 0.7}},
        {selector: "node[type = 'protein']", style: {"shape": "rectangle"}},
        {selector: "node[role = 'seed']", style: {"width": 20, "height": 20, "border-width": 2, "border-color": "#000"}},
        {selector: "edge", style: {"width": 1, "line-color": "#bbb", "curve-style": "straight"}},
        {selector: "edge[kind = 'internal']", style: {"line-style": "dotted", "line-color": "#888"}},
        {selector: "edge[kind = 'ligand_receptor']", style: {"line-style": "dashed", "line-color": "#2a9d2a"}},
        {selector: ".faded", style: {"opacity": 0.15}},
        {selector: ".hit", style: {"border-width": 4, "border-color": "#e6a100", "label": "data(symbol)", "z-index": 10}}
      ]
    });
    var tip = document.getElementById("tip");
    function esc(s) {
      return String(s).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
    }
    cy.on("mouseover", "node", function (ev) {
      var d = ev.target.data(), p = ev.renderedPosition;
      tip.innerHTML = "<b>" + esc(d.symbol) + "</b> (" + esc(d.type) + ", " + esc(d.role) + ")<br>score " +
        (d.score === null ? "n/a" : d.score.toPrecision(3)) + ", rank " + d.rank + "<br>" + esc(d.text);
      tip.style.left = (p.x + 12) + "px"; tip.style.top = (p.y + 12) + "px"; tip.style.display = "block";
    });
    cy.on("mouseout", "node", function () { tip.style.display = "none"; });
    var box = document.getElementById("terms"), active = null;
    data.terms.forEach(function (t, i) {
      var div = document.createElement("div");
      div.className = "term"; div.id = "term" + i;
      div.textContent = t.name + " (" + t.collection + ", " + t.genes.length + " genes, q " + t.q.toPrecision(2) + ")";
      div.addEventListener("click", function () {
        cy.elements().removeClass("faded hit");
        document.querySelectorAll(".term.on").forEach(function (x) { x.classList.remove("on"); });
        if (active === i) { active = null; return; }
        active = i; div.classList.add("on");
        var genes = {};
        t.genes.forEach(function (g) { genes[g] = true; });
        var hit = cy.nodes().filter(function (n) { return genes[n.data("symbol").toUpperCase()]; });
        cy.elements().not(hit).addClass("faded");
        hit.addClass("hit");
        report({state: "ready", nodes: cy.nodes().length, highlighted: hit.length, term: t.name});
      });
      box.appendChild(div);
    });
    cy.fit(undefined, 30);
    var bb = cy.nodes().renderedBoundingBox();
    report({state: "ready", nodes: cy.nodes().length, edges: cy.edges().length, visible: cy.nodes(":visible").length,
            width: Math.round(bb.w), height: Math.round(bb.h)});
    var asked = /^#term=(\d+)$/.exec(location.hash);  // a link to page.html#term=N opens with term N selected
    if (asked && document.getElementById("term" + asked[1])) { document.getElementById("term" + asked[1]).click(); }
  } catch (err) {
    errors.push(String(err && err.stack || err));
    report({state: "error"});
  }
})();
</script></body></html>
"""


def _json_for_script(value) -> str:
    """JSON safe inside a ``<script>`` element (no ``</`` sequence)."""
    return json.dumps(value, allow_nan=False).replace("</", "<\\/")


def page_data(sub: CoreSubgraph, enrichment: pd.DataFrame, kg: KnowledgeGraph, *, seed: int = 0,
              n_terms: int = N_TERMS) -> dict:
    """The JSON the page draws: nodes (with layout positions, in pixels), edges and the best terms."""
    from celltosg.explain._layout import community_layout, label_nodes

    pos, community = community_layout(sub.to_networkx(), seed=seed)
    core = sub.core
    labelled = set(label_nodes(sub))
    text = kg.nodes["text"].fillna("").astype(str).to_numpy()
    scores = core["score"].to_numpy(dtype=float)
    nodes = [{"id": int(r.node_index), "symbol": str(r.symbol), "type": str(r.type), "role": str(r.role),
              "rank": int(r.rank), "score": float(r.score) if np.isfinite(r.score) else None,
              "text": text[int(r.node_index)], "label": int(r.node_index) in labelled,
              "community": community.get(int(r.node_index), 0),
              "x": float(pos[int(r.node_index)][0] * 500), "y": float(-pos[int(r.node_index)][1] * 500)}
             for r in core.itertuples(index=False)]
    edges = [{"source": int(r.source), "target": int(r.target), "kind": str(r.kind)}
             for r in sub.edges.itertuples(index=False)]
    top = enrichment.nsmallest(n_terms, "p")
    terms = [{"name": str(r.term_name), "collection": str(r.collection), "q": float(r.q),
              "genes": str(r.genes).upper().split("|") if str(r.genes) else []} for r in top.itertuples(index=False)]
    finite = np.abs(scores[np.isfinite(scores)])
    nonzero = finite[finite > 0]
    return {"nodes": nodes, "edges": edges, "terms": terms, "bound": float(finite.max()) if finite.size else 1.0,
            "linthresh": float(np.quantile(nonzero, 0.1)) if nonzero.size else 1.0}


def write_html(sub: CoreSubgraph, enrichment: pd.DataFrame, kg: KnowledgeGraph, path: str | Path, *,
               title: str = "core subgraph", seed: int = 0) -> Path:
    """Write the self-contained interactive page of ``sub`` to ``path`` (atomically); returns the path."""
    from celltosg.io_utils import atomic_file

    script = (resources.files("celltosg.explain") / "_vendor" / CYTOSCAPE_JS).read_text(encoding="utf-8")
    page = (PAGE.replace("__TITLE__", html.escape(title))
            .replace("__DATA__", _json_for_script(page_data(sub, enrichment, kg, seed=seed)))
            .replace("__CYTOSCAPE__", script))  # last: the library's text is never searched for placeholders
    path = Path(path)
    with atomic_file(path) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return path
