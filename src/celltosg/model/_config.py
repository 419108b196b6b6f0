"""FMConfig: the hyper-parameters of CellTOSG-FM."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from celltosg.errors import MalformedInputError

CONV_KINDS = ("attention", "gat", "gcn", "gin")
FUSION_KINDS = ("gated", "sum")


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
        Dropout on node features after fusion and each layer.
    readout_dim
        Cell embedding width D.
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
    readout_dim: int = 64
    n_classes: int = 0

    def __post_init__(self) -> None:
        if self.conv not in CONV_KINDS:
            raise MalformedInputError(f"FMConfig.conv={self.conv!r} is unknown; choose one of {CONV_KINDS}")
        if self.fusion not in FUSION_KINDS:
            raise MalformedInputError(f"FMConfig.fusion={self.fusion!r} is unknown; choose one of {FUSION_KINDS}")
        if self.conv in ("attention", "gat") and self.hidden % self.heads:
            raise MalformedInputError(
                f"FMConfig.hidden={self.hidden} is not a multiple of heads={self.heads}; change one of them")
        for name in ("hidden", "heads", "layers", "readout_dim"):
            if getattr(self, name) < 1:
                raise MalformedInputError(f"FMConfig.{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise MalformedInputError(f"FMConfig.dropout must be in [0, 1), got {self.dropout}")
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
