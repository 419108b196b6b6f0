"""Model checkpoints: plain dicts of tensors and built-in types, loaded with ``weights_only=True``.

A model checkpoint holds everything needed to rebuild the model and map a new AnnData onto it:
``state_dict``, ``config`` (FMConfig as a dict), ``graph`` (the GraphInputs tensors), ``label_mapping``,
``task``, ``rna_node_ids`` (the RNA nodes = input genes, in column order) and ``pack`` (name, path,
checksum of the knowledge-graph pack the graph was cut from).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celltosg.errors import CellTOSGError, CheckpointError
from celltosg.io_utils import atomic_file
from celltosg.train._engine import cpu_state

if TYPE_CHECKING:
    from celltosg.kg import KnowledgeGraph

log = logging.getLogger(__name__)

FORMAT = "celltosg-fm"
FORMAT_VERSION = 1
MODEL_KEYS = ("state_dict", "config", "graph", "label_mapping", "task", "rna_node_ids", "pack")


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars and arrays turned into Python numbers and tensors (loadable safely)."""
    import numpy as np
    import torch

    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value)
    return value


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically with ``torch.save``; numpy values become Python numbers / tensors."""
    import torch

    path = Path(path)
    with atomic_file(path) as tmp:
        torch.save(_plain({"format": FORMAT, "format_version": FORMAT_VERSION, **payload}), tmp)
    return path


def load_checkpoint(path: str | os.PathLike, *, required: tuple[str, ...] = MODEL_KEYS) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` and check its format and keys.

    Raises :class:`CheckpointError` when the file is missing, unreadable, not a celltosg checkpoint, of
    another format version, or lacks one of ``required``.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; give the file written by "
                              "`celltosg pretrain` or `celltosg finetune`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors for a bad file
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(error).__name__}: {error}); "
                              "it is corrupt or not a celltosg checkpoint: re-create it") from error
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a celltosg model checkpoint; give a file written by celltosg")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format version {payload.get('format_version')}, this "
                              f"celltosg reads version {FORMAT_VERSION}; re-create it with this version")
    missing = [key for key in required if key not in payload]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it is incomplete: re-create it")
    return payload


def pack_reference(kg: KnowledgeGraph) -> dict[str, str]:
    """Name, directory and checksum of the pack ``kg`` comes from (an embedded pack is named, not pathed)."""
    from celltosg.kg import EMBEDDED_PACKS, embedded_pack_path

    pack_dir = Path(kg.pack_dir).resolve() if kg.pack_dir is not None else None
    for name in EMBEDDED_PACKS:
        if pack_dir is not None and pack_dir == embedded_pack_path(name).resolve():
            return {"name": name, "path": "", "checksum": kg.checksum}
    return {"name": kg.name.removesuffix("[subgraph]"), "path": str(pack_dir or ""), "checksum": kg.checksum}


def model_payload(model, config, graph, kg: KnowledgeGraph, *, label_mapping: dict[str, int],
                  task: str) -> dict[str, Any]:
    """The model part of a checkpoint (see the module docstring)."""
    return {
        "state_dict": cpu_state(model),
        "config": config.to_dict(),
        "graph": graph.to_dict(),
        "label_mapping": dict(label_mapping),
        "task": task,
        "rna_node_ids": [str(i) for i in kg.nodes["node_id"].to_numpy()[: kg.n_rna]],
        "pack": pack_reference(kg),
    }


def build_model(payload: dict[str, Any], *, path: str | os.PathLike = "checkpoint"):
    """Rebuild the model of a checkpoint payload in eval mode; returns ``(model, config, graph)``."""
    from celltosg.model import CellTOSGFM, FMConfig, GraphInputs

    try:
        config = FMConfig.from_dict(payload["config"])
        graph = GraphInputs.from_dict(payload["graph"])
        model = CellTOSGFM(graph, config)
        model.load_state_dict(payload["state_dict"])
    except (CellTOSGError, TypeError, RuntimeError, ValueError, KeyError) as error:
        raise CheckpointError(f"checkpoint {path} does not match this model ({error}); it was written by "
                              "another celltosg version or is damaged: re-create it") from error
    model.eval()
    return model, config, graph


def load_pack(payload: dict[str, Any], *, path: str | os.PathLike = "checkpoint"):
    """The checkpoint's pack (checksum verified) and the pack RNA index of each model gene, int64 (n_rna,)."""
    import numpy as np

    from celltosg.kg import KnowledgeGraph

    pack = payload["pack"]
    source = pack["path"] or pack["name"]
    try:
        kg = KnowledgeGraph.load(source)
    except CellTOSGError as error:
        raise CheckpointError(f"the knowledge-graph pack {source!r} of checkpoint {path} cannot be loaded "
                              f"({error}); install or rebuild that pack") from error
    if kg.checksum != pack["checksum"]:
        raise CheckpointError(f"checkpoint {path} was trained on pack {source!r} with checksum "
                              f"{pack['checksum'][:12]}, but that pack now has {kg.checksum[:12]}; "
                              "use the same pack version or retrain")
    index = {node_id: i for i, node_id in enumerate(kg.nodes["node_id"].to_numpy()[: kg.n_rna])}
    missing = [i for i in payload["rna_node_ids"] if i not in index]
    if missing:
        raise CheckpointError(f"checkpoint {path} names {len(missing)} RNA nodes absent from pack "
                              f"{source!r} (first: {missing[:5]}); the checkpoint and pack do not match")
    return kg, np.array([index[i] for i in payload["rna_node_ids"]], dtype=np.int64)
