"""FMConfig: the hyper-parameters of CellTOSG-FM."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from celltosg.errors import MalformedInputError

CONV_KINDS = ("attention", "gat", "gcn", "gin")
FUSION_KINDS = ("gated", "sum")
READOUT_KINDS = ("per_node", "pool")


@dataclass
class FMConfig:
    """Hyper-parameters of :class:`CellTOSGFM`.

    Attributes
    ----------
    hidden
        Node embedding width H.
    heads
        Attention heads (``attention`` and ``gat``); ``hidden`` must be a multiple.
    layers
        Global message-passing layers (or union layers when ``two_stage`` is False).
    conv
        ``attention`` (source-scored, fast), ``gat`` (exact GAT), ``gcn`` or ``gin``.
    text_dim, seq_dim
        Widths of the frozen text embedding and sequence features (T, S).
    use_text, use_seq
        Feed the text / sequence modality.
    two_stage
        Internal (RNA -> protein) message passing then global; False = one stage over the union.
    fusion
        ``gated`` (per-node, per-cell modality gates) or ``sum`` (plain sum, an ablation).
    dropout
        Dropout in the readout (before the cell embedding's last layer).
    node_dropout
        Dropout on node states after fusion and each layer (costly: it draws B*N*hidden numbers).
    readout
        ``per_node`` (default): each node's final state -> ``readout_rank`` channels (shared weights),
        flattened over all N nodes, MLP to D (keeps gene identity); ``pool``: attention + mean + max
        pooling over nodes (the ablation).
    readout_rank
        Channels per node r of the ``per_node`` readout.
    readout_dim
        Cell embedding width D.
    skip
        Add a linear map of the (standardised) omic values to the logits: ``logits = head(cell) + W x``.
    message_passing
        False skips every message-passing layer (the "no message passing" ablation).
    reverse_internal
        Also pass messages protein -> RNA after the global layers (one layer over the reversed internal
        edges), so that RNA node states depend on the graph.
    standardize, clip
        Standardise each gene with the train split's mean and sd, clipped to ``[-clip, clip]``.
    n_classes
        Task head outputs C; 0 = no head (pretraining, embeddings).
    """

    hidden: int = 32
    heads: int = 4
    layers: int = 2
    conv: str = "attention"
    text_dim: int = 384
    seq_dim: int = 32
    use_text: bool = True
    use_seq: bool = True
    two_stage: bool = True
    fusion: str = "gated"
    dropout: float = 0.1
    node_dropout: float = 0.0
    readout: str = "per_node"
    readout_rank: int = 4
    readout_dim: int = 64
    skip: bool = True
    message_passing: bool = True
    reverse_internal: bool = False
    standardize: bool = True
    clip: float = 10.0
    n_classes: int = 0

    def __post_init__(self) -> None:
        if self.conv not in CONV_KINDS:
            raise MalformedInputError(f"FMConfig.conv={self.conv!r} is unknown; choose one of {CONV_KINDS}")
        if self.fusion not in FUSION_KINDS:
            raise MalformedInputError(f"FMConfig.fusion={self.fusion!r} is unknown; choose one of {FUSION_KINDS}")
        if self.readout not in READOUT_KINDS:
            raise MalformedInputError(f"FMConfig.readout={self.readout!r} is unknown; choose one of {READOUT_KINDS}")
        if self.conv in ("attention", "gat") and self.hidden % self.heads:
            raise MalformedInputError(
                f"FMConfig.hidden={self.hidden} is not a multiple of heads={self.heads}; change one of them")
        for name in ("hidden", "heads", "layers", "readout_dim", "readout_rank"):
            if getattr(self, name) < 1:
                raise MalformedInputError(f"FMConfig.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("dropout", "node_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise MalformedInputError(f"FMConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.clip <= 0:
            raise MalformedInputError(f"FMConfig.clip must be positive, got {self.clip}")
        if self.n_classes < 0:
            raise MalformedInputError(f"FMConfig.n_classes must be >= 0, got {self.n_classes}")

    def to_dict(self) -> dict:
        """Plain dict (for checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> FMConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise MalformedInputError(f"unknown FMConfig keys {sorted(unknown)}; the checkpoint is from another "
                                      "celltosg version")
        return cls(**values)
