"""Peak memory of a block of code: resident set size sampled in a thread, plus CUDA's own counter."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

_MB = 1024 * 1024


@dataclass
class PeakMemory:
    """Filled on exit: ``rss_mb`` = peak resident memory above the level at entry (MB, sampled every
    ``interval`` seconds, so very short spikes can be missed); ``cuda_mb`` = peak CUDA memory allocated
    above the level at entry (0 without CUDA)."""

    rss_mb: float = 0.0
    cuda_mb: float = 0.0

    @property
    def peak_mb(self) -> float:
        """Host plus device peak (MB)."""
        return self.rss_mb + self.cuda_mb


@contextlib.contextmanager
def measure_peak_memory(interval: float = 0.005) -> Iterator[PeakMemory]:
    """Measure the extra memory a block needs; yields a :class:`PeakMemory` filled on exit."""
    import psutil
    import torch

    process = psutil.Process()
    result = PeakMemory()
    start = process.memory_info().rss
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            time.sleep(interval)

    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        cuda_start = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        result.rss_mb = max(peak[0] - start, 0) / _MB
        if cuda:
            torch.cuda.synchronize()
            result.cuda_mb = max(torch.cuda.max_memory_allocated() - cuda_start, 0) / _MB
