"""CellTOSG-FM: shared-topology graph layers, the foundation model, edge-masking pretraining.

Every cell of a batch shares one knowledge graph: node states are ``(B, N, F)`` tensors and each layer
runs once per batch over one edge list (:class:`SharedGraph`), never a per-cell copy.
"""

from celltosg.model._blocks import LayerAttention, ResidualConvBlock, make_conv
from celltosg.model._config import CONV_KINDS, READOUT_KINDS, FMConfig
from celltosg.model._fm import CellTOSGFM
from celltosg.model._fusion import NodeFusion
from celltosg.model._inputs import GraphInputs, graph_inputs
from celltosg.model._layers import SharedGATConv, SharedGCNConv, SharedGINConv, SourceAttentionConv
from celltosg.model._pretrain import EdgeMaskingObjective, PretrainOutput, edge_metrics
from celltosg.model._readout import AttentionReadout, PerNodeReadout
from celltosg.model._reference import ReferenceFM
from celltosg.model._sparse import SharedGraph

__all__ = [
    "CONV_KINDS",
    "READOUT_KINDS",
    "AttentionReadout",
    "CellTOSGFM",
    "EdgeMaskingObjective",
    "FMConfig",
    "GraphInputs",
    "LayerAttention",
    "NodeFusion",
    "PerNodeReadout",
    "PretrainOutput",
    "ReferenceFM",
    "ResidualConvBlock",
    "SharedGATConv",
    "SharedGCNConv",
    "SharedGINConv",
    "SharedGraph",
    "SourceAttentionConv",
    "edge_metrics",
    "graph_inputs",
    "make_conv",
]
