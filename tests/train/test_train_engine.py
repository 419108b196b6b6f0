"""The engine's in-memory batches: seeded per epoch, and DDP ranks padded to equal steps."""

from __future__ import annotations

import torch

from celltosg.train import epoch_generator, tensor_batches


def test_each_epoch_is_a_seeded_permutation():
    values = torch.arange(10) * 10
    batches = tensor_batches((values,), 4)
    first = [b for b in batches(0, epoch_generator(1, 0))]
    again = [b for b in batches(0, epoch_generator(1, 0))]
    rows = torch.cat([idx for _, idx in first])
    assert sorted(rows.tolist()) == list(range(10)) and [len(idx) for _, idx in first] == [4, 4, 2]
    assert all(torch.equal(v, rows_ * 10) for (v, rows_) in first)
    assert all(torch.equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    other = torch.cat([idx for _, idx in batches(1, epoch_generator(1, 1))])
    assert not torch.equal(rows, other)


def test_ranks_take_equal_steps_and_cover_every_row():
    n, world = 10, 3
    per_rank = [torch.cat([idx for _, idx in tensor_batches((torch.arange(n),), 2, rank=r, world_size=world)(
        0, epoch_generator(0, 0))]) for r in range(world)]
    assert [len(rows) for rows in per_rank] == [4, 4, 4]  # ceil(10 / 3), two rows repeated as padding
    assert set(torch.cat(per_rank).tolist()) == set(range(n))
