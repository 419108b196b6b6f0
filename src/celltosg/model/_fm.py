"""CellTOSGFM: the graph-language foundation model over one shared knowledge graph."""

from __future__ import annotations

import torch
from torch import nn

from celltosg.errors import MalformedInputError
from celltosg.model._blocks import LayerAttention, ResidualConvBlock
from celltosg.model._config import FMConfig
from celltosg.model._fusion import NodeFusion
from celltosg.model._inputs import GraphInputs
from celltosg.model._readout import AttentionReadout, PerNodeReadout
from celltosg.model._sparse import SharedGraph

READOUT_PREFIXES = ("readout.", "head.", "skip.")


class CellTOSGFM(nn.Module):
    """Standardise -> fusion -> internal, global [, reverse internal] message passing -> readout -> head,
    plus a linear skip path from the standardised omic values to the logits.

    Every cell of a batch shares the graph: node states are (B, N, hidden) and each layer runs once per
    batch over one edge list. ``logits = head(readout(h)) + skip(x)``: the graph path and the skip path
    (both also returned, for diagnostics). The readout is :class:`PerNodeReadout` (default; ``N r D``
    parameters plus a part independent of N, see there) or :class:`AttentionReadout` (``pool``).
    Parameter count with the default readout, N nodes, H = hidden, r = readout_rank, D = readout_dim,
    T = text_dim, C classes: readout ``N r D + r (H + 1) + D^2 + 2 D``; head and skip path
    ``(D + n_rna + 2) C``; encoder (fusion, message passing) ``O(H T + H^2)``, independent of N. The
    ``pool`` readout has ``3 H D + D^2 + H + 2 D + 1`` parameters, independent of N.

    Parameters
    ----------
    graph
        :class:`GraphInputs` (topology, text embeddings, sequence features); its features are kept as
        non-persistent buffers (they follow ``.to(device)`` but are not written into ``state_dict``).
    config
        :class:`FMConfig`; its ``text_dim`` / ``seq_dim`` must match ``graph``.

    The per-gene input standardisation (``input_mean``, ``input_scale``, (n_rna,) each) is a persistent
    buffer, so checkpoints carry it; it is the identity until :meth:`set_input_scaling` is called.
    """

    def __init__(self, graph: GraphInputs, config: FMConfig | None = None):
        super().__init__()
        config = config or FMConfig(text_dim=graph.text_emb.shape[1], seq_dim=graph.seq_feat.shape[1])
        if config.use_text and graph.text_emb.shape[1] != config.text_dim:
            raise MalformedInputError(f"text embeddings are {graph.text_emb.shape[1]} wide but "
                                      f"FMConfig.text_dim={config.text_dim}; set text_dim to match")
        if config.use_seq and graph.seq_feat.shape[1] != config.seq_dim:
            raise MalformedInputError(f"sequence features are {graph.seq_feat.shape[1]} wide but "
                                      f"FMConfig.seq_dim={config.seq_dim}; set seq_dim to match")
        self.config, self.graph = config, graph
        self.register_buffer("text_emb", graph.text_emb.float(), persistent=False)
        self.register_buffer("seq_feat", graph.seq_feat.float(), persistent=False)
        self.register_buffer("seq_mask", graph.seq_mask.bool(), persistent=False)
        self.register_buffer("input_mean", torch.zeros(graph.n_rna))
        self.register_buffer("input_scale", torch.ones(graph.n_rna))
        n = graph.n_nodes
        self.internal_graph = SharedGraph(graph.internal_edge_index, n)
        self.global_graph = SharedGraph(graph.global_edge_index, n)
        self.reverse_graph = SharedGraph(graph.internal_edge_index.flip(0), n)
        self._union_graph = None if config.two_stage else self._union(self.global_graph)
        self.fusion = NodeFusion(config.hidden, config.text_dim, config.seq_dim, use_text=config.use_text,
                                 use_seq=config.use_seq, fusion=config.fusion)
        block = lambda: ResidualConvBlock(config.conv, config.hidden, config.heads, config.node_dropout)  # noqa: E731
        passing = config.message_passing
        self.internal_layers = nn.ModuleList([block()] if config.two_stage and passing else [])
        self.global_layers = nn.ModuleList([block() for _ in range(config.layers if passing else 0)])
        self.reverse_layers = nn.ModuleList([block()] if config.reverse_internal and passing else [])
        self.dropout = nn.Dropout(config.node_dropout) if config.node_dropout else nn.Identity()
        if config.readout == "per_node":
            self.readout = PerNodeReadout(n, config.hidden, config.readout_rank, config.readout_dim, config.dropout)
        else:
            self.readout = AttentionReadout(config.hidden, config.readout_dim)
        self.head = self.skip = None
        self.set_head(config.n_classes)

    def _union(self, global_graph: SharedGraph) -> SharedGraph:
        edges = torch.cat([self.internal_graph.edge_index, global_graph.edge_index.to(self.internal_graph.edge_index)], 1)
        return SharedGraph(edges, self.graph.n_nodes)

    def _stages(self, edge_mask: torch.Tensor | None) -> list[tuple[str, SharedGraph, nn.ModuleList]]:
        global_graph = self.global_graph
        if edge_mask is not None:
            if edge_mask.shape != (global_graph.n_edges,):
                raise MalformedInputError(f"edge_mask must be bool ({global_graph.n_edges},) over the global "
                                          f"edges, got shape {tuple(edge_mask.shape)}")
            global_graph = global_graph.subset(~edge_mask.bool())
        if self.config.two_stage:
            stages = [("internal", self.internal_graph, self.internal_layers),
                      ("global", global_graph, self.global_layers)]
        else:
            union = self._union_graph if edge_mask is None else self._union(global_graph)
            stages = [("union", union, self.global_layers)]
        return [*stages, ("reverse", self.reverse_graph, self.reverse_layers)]

    def set_input_scaling(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """Standardise inputs as ``clamp((x - mean) / scale, -clip, clip)``; ``mean``, ``scale`` (n_rna,)."""
        mean, scale = torch.as_tensor(mean).float().flatten(), torch.as_tensor(scale).float().flatten()
        if mean.shape != (self.graph.n_rna,) or scale.shape != (self.graph.n_rna,) or bool((scale <= 0).any()):
            raise MalformedInputError(f"input scaling needs mean and positive scale of shape ({self.graph.n_rna},)")
        self.input_mean.copy_(mean)
        self.input_scale.copy_(scale)

    def scale_input(self, x_rna: torch.Tensor) -> torch.Tensor:
        """Checked, standardised and clipped ``x_rna`` (B, n_rna) (unchanged when ``standardize`` is off)."""
        if x_rna.dim() != 2 or x_rna.shape[1] != self.graph.n_rna:
            raise MalformedInputError(f"x_rna must have shape (B, {self.graph.n_rna}) (one column per RNA node "
                                      f"of the graph), got {tuple(x_rna.shape)}")
        x = x_rna.to(self.text_emb.dtype)
        if not self.config.standardize:
            return x
        clip = self.config.clip
        return ((x - self.input_mean) / self.input_scale).clamp_(-clip, clip)

    def encode(self, x_rna: torch.Tensor, edge_mask: torch.Tensor | None = None, return_attention: bool = False):
        """Node embeddings of every cell.

        Parameters
        ----------
        x_rna
            (B, n_rna) omic values of the RNA nodes, in node order (as stored; standardised inside).
        edge_mask
            Optional bool (Eg,) over ``graph.global_edge_index``: True hides that edge from message
            passing in this call (pretraining's masked edges).
        return_attention
            Also return a list of :class:`LayerAttention` (stage, edge_index (2, E), alpha (B, E, H)), one per
            attention layer in order (empty for ``gcn`` / ``gin``).

        Returns
        -------
        (B, N, hidden) node embeddings (a transposed view of node-first storage) [, list of LayerAttention].
        """
        h, attention = self._encode_nodes(self.scale_input(x_rna), edge_mask, return_attention)
        return (h.transpose(0, 1), attention) if return_attention else h.transpose(0, 1)

    def _encode_nodes(self, x, edge_mask, return_attention) -> tuple[torch.Tensor, list[LayerAttention]]:
        """Node-first states (N, B, hidden) of standardised ``x`` (B, n_rna) and the attention list."""
        h = self.fusion.forward_nodes(x, self.graph.n_protein, self.text_emb, self.seq_feat, self.seq_mask)
        h = self.dropout(h)
        attention: list[LayerAttention] = []
        for stage, graph, layers in self._stages(edge_mask):
            for layer in layers:
                if return_attention:
                    h, alpha = layer.forward_nodes(h, graph, return_attention=True)
                    if alpha is not None:
                        attention.append(LayerAttention(stage, graph.edge_index, alpha))
                else:
                    h = layer.forward_nodes(h, graph)
        return h, attention

    def forward(self, x_rna: torch.Tensor, edge_mask: torch.Tensor | None = None,
                return_attention: bool = False) -> dict:
        """``x_rna`` (B, n_rna) -> dict(node (B, N, hidden), cell (B, D); with a head also logits (B, C),
        graph_logits (B, C) = head(cell) and skip_logits (B, C) (zero without the skip path); attention
        list when ``return_attention``)."""
        x = self.scale_input(x_rna)
        h, attention = self._encode_nodes(x, edge_mask, return_attention)
        out = {"node": h.transpose(0, 1), "cell": self.readout.forward_nodes(h)}
        if self.head is not None:
            out["graph_logits"] = self.head(out["cell"])
            out["skip_logits"] = self.skip(x) if self.skip is not None else torch.zeros_like(out["graph_logits"])
            out["logits"] = out["graph_logits"] + out["skip_logits"]
        if return_attention:
            out["attention"] = attention
        return out

    def set_head(self, n_classes: int) -> None:
        """Fresh task head ``Linear(D, n_classes)`` and skip path ``Linear(n_rna, n_classes)`` (0 removes
        both), e.g. before fine-tuning."""
        self.config.n_classes = int(n_classes)
        device = self.input_mean.device
        self.head = nn.Linear(self.config.readout_dim, n_classes).to(device) if n_classes else None
        use_skip = n_classes and self.config.skip
        self.skip = nn.Linear(self.graph.n_rna, n_classes).to(device) if use_skip else None

    def embed(self, x_rna: torch.Tensor) -> torch.Tensor:
        """Cell embeddings (B, D) of ``x_rna`` (B, n_rna)."""
        return self.readout.forward_nodes(self._encode_nodes(self.scale_input(x_rna), None, False)[0])
