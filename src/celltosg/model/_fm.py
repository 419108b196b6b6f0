"""CellTOSGFM: the graph-language foundation model over one shared knowledge graph."""

from __future__ import annotations

import torch
from torch import nn

from celltosg.errors import MalformedInputError
from celltosg.model._blocks import LayerAttention, ResidualConvBlock
from celltosg.model._config import FMConfig
from celltosg.model._fusion import NodeFusion
from celltosg.model._inputs import GraphInputs
from celltosg.model._readout import AttentionReadout
from celltosg.model._sparse import SharedGraph


class CellTOSGFM(nn.Module):
    """Fusion -> internal message passing -> global message passing -> readout -> task head.

    Every cell of a batch shares the graph: node states are (B, N, hidden) and each layer runs once per
    batch over one edge list.

    Parameters
    ----------
    graph
        :class:`GraphInputs` (topology, text embeddings, sequence features); its features are kept as
        non-persistent buffers (they follow ``.to(device)`` but are not written into ``state_dict``).
    config
        :class:`FMConfig`; its ``text_dim`` / ``seq_dim`` must match ``graph``.
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
        n = graph.n_nodes
        self.internal_graph = SharedGraph(graph.internal_edge_index, n)
        self.global_graph = SharedGraph(graph.global_edge_index, n)
        self._union_graph = None if config.two_stage else self._union(self.global_graph)
        self.fusion = NodeFusion(config.hidden, config.text_dim, config.seq_dim, use_text=config.use_text,
                                 use_seq=config.use_seq, fusion=config.fusion)
        block = lambda: ResidualConvBlock(config.conv, config.hidden, config.heads, config.dropout)  # noqa: E731
        self.internal_layers = nn.ModuleList([block()] if config.two_stage else [])
        self.global_layers = nn.ModuleList([block() for _ in range(config.layers)])
        self.dropout = nn.Dropout(config.dropout)
        self.readout = AttentionReadout(config.hidden, config.readout_dim)
        self.head = nn.Linear(config.readout_dim, config.n_classes) if config.n_classes else None

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
            return [("internal", self.internal_graph, self.internal_layers),
                    ("global", global_graph, self.global_layers)]
        union = self._union_graph if edge_mask is None else self._union(global_graph)
        return [("union", union, self.global_layers)]

    def encode(self, x_rna: torch.Tensor, edge_mask: torch.Tensor | None = None, return_attention: bool = False):
        """Node embeddings of every cell.

        Parameters
        ----------
        x_rna
            (B, n_rna) omic values of the RNA nodes, in node order.
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
        h, attention = self._encode_nodes(x_rna, edge_mask, return_attention)
        return (h.transpose(0, 1), attention) if return_attention else h.transpose(0, 1)

    def _encode_nodes(self, x_rna, edge_mask, return_attention) -> tuple[torch.Tensor, list[LayerAttention]]:
        """Node-first states (N, B, hidden) and the attention list (empty unless asked)."""
        if x_rna.dim() != 2 or x_rna.shape[1] != self.graph.n_rna:
            raise MalformedInputError(f"x_rna must have shape (B, {self.graph.n_rna}) (one column per RNA node "
                                      f"of the graph), got {tuple(x_rna.shape)}")
        h = self.fusion.forward_nodes(x_rna.to(self.text_emb.dtype), self.graph.n_protein, self.text_emb,
                                      self.seq_feat, self.seq_mask)
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
        """``x_rna`` (B, n_rna) -> dict(node (B, N, hidden), cell (B, D), logits (B, C) when a head is set,
        attention list when ``return_attention``)."""
        h, attention = self._encode_nodes(x_rna, edge_mask, return_attention)
        out = {"node": h.transpose(0, 1), "cell": self.readout.forward_nodes(h)}
        if self.head is not None:
            out["logits"] = self.head(out["cell"])
        if return_attention:
            out["attention"] = attention
        return out

    def set_head(self, n_classes: int) -> None:
        """Replace the task head by a fresh ``Linear(D, n_classes)`` (0 removes it), e.g. before fine-tuning."""
        self.config.n_classes = int(n_classes)
        device = self.readout.score.weight.device
        self.head = nn.Linear(self.config.readout_dim, n_classes).to(device) if n_classes else None

    def embed(self, x_rna: torch.Tensor) -> torch.Tensor:
        """Cell embeddings (B, D) of ``x_rna`` (B, n_rna)."""
        return self.readout.forward_nodes(self._encode_nodes(x_rna, None, False)[0])
