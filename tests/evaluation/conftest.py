"""Evaluation tests train small torch models: one thread each, quiet progress."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("CELLTOSG_QUIET", "1")
    yield
    torch.set_num_threads(threads)
