"""How much of CellTOSG-FM's prediction comes from the graph path and how much from the skip path."""

from __future__ import annotations

import numpy as np


def logit_paths(model, X, *, batch_size: int = 256) -> dict[str, float]:
    """Spread of each path's logits and agreement of the full prediction with each path alone.

    Parameters
    ----------
    model
        A :class:`celltosg.model.CellTOSGFM` with a task head.
    X
        float (n, n_rna) expression (as stored; the model standardises it).

    Returns
    -------
    dict: ``graph_spread`` / ``skip_spread`` (mean over cells of the standard deviation over classes of
    that path's logits), ``agree_skip`` / ``agree_graph`` (fraction of cells whose predicted class equals
    that path's own argmax).
    """
    import torch

    model.eval()
    device = next(model.parameters()).device
    parts = {"logits": [], "graph_logits": [], "skip_logits": []}
    with torch.no_grad():
        for start in range(0, len(X), batch_size):
            out = model(torch.as_tensor(np.asarray(X[start : start + batch_size]), device=device))
            for key, values in parts.items():
                values.append(out[key].float().cpu())
    full, graph, skip = (torch.cat(parts[k]) for k in ("logits", "graph_logits", "skip_logits"))
    predicted = full.argmax(1)
    return {"graph_spread": float(graph.std(1).mean()), "skip_spread": float(skip.std(1).mean()),
            "agree_skip": float((predicted == skip.argmax(1)).float().mean()),
            "agree_graph": float((predicted == graph.argmax(1)).float().mean())}
