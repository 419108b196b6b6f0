"""Data-parallel training on CPU: spawn ranks joined in a gloo process group (PyTorch DDP)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def distributed() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _rank_main(rank: int, world_size: int, init: str, function: Callable, args: tuple, threads: int) -> None:
    import torch
    import torch.distributed as dist

    torch.set_num_threads(threads)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world_size)
    try:
        function(*args)
    finally:
        dist.destroy_process_group()


def launch(function: Callable, args: tuple, *, world_size: int) -> None:
    """Run ``function(*args)`` in ``world_size`` new CPU processes joined in a gloo process group.

    The processes are spawned, so ``function`` and ``args`` must pickle (module-level classes and
    functions) and a calling script needs an ``if __name__ == "__main__":`` guard.
    """
    import tempfile

    import torch
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="celltosg-ddp-") as tmp:
        init = Path(tmp, "rendezvous").as_uri()
        mp.start_processes(_rank_main, args=(world_size, init, function, args, torch.get_num_threads()),
                           nprocs=world_size, join=True, start_method="spawn")
