"""CellTOSG-FM: shared-topology graph layers, the foundation model, pretraining objective and readouts."""

from celltosg.model._layers import SharedGATConv, SharedGCNConv, SharedGINConv, SourceAttentionConv
from celltosg.model._sparse import SharedGraph

__all__ = [
    "SharedGATConv",
    "SharedGCNConv",
    "SharedGINConv",
    "SharedGraph",
    "SourceAttentionConv",
]
