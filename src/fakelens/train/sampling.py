"""Training data order and randomness that depend on (seed, epoch) only, so `--resume` replays
exactly what the uninterrupted run would have seen.

`EpochSampler` draws an epoch's order (a shuffle, or class-balanced draws with replacement) from
a generator seeded by (seed, epoch), and gives every drawn item its own seed from the same
generator; `SeededItems` loads each item under its seed (the clip start, the frame, the
augmentations), in whichever worker loads it. Nothing depends on how many batches ran before, on
loader workers (persistent or not) or on a restored process, only on the epoch number, which
Lightning restores from the checkpoint and passes to `set_epoch`. (A resumed Lightning run builds
the loader's iterator before it has restored the epoch counters and calls `set_epoch`; with loader
workers that iterator draws its first indices at once, from the old epoch: the sampler records the
epoch it drew (`drawn_epoch`) and fakelens.train.engine redraws when the run starts another.) Under DDP the sampler shards the
epoch itself (it is a DistributedSampler, so Lightning leaves it in place); the global random
state of the training step (dropout, batch mixing) is reseeded per epoch by the module
(fakelens.train.module.DetectorModule.on_train_batch_start).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import torch
from torch.utils.data import Dataset
from torch.utils.data.distributed import DistributedSampler

_SEED_STRIDE = 1_000_003  # epochs of different seeds never share a generator seed


def epoch_seed(seed: int, epoch: int) -> int:
    """The generator seed of an epoch of a run seeded `seed`."""
    return (int(seed) * _SEED_STRIDE + int(epoch)) % (2**63 - 1)


class EpochSampler(DistributedSampler):
    """Yields (dataset index, item seed) for one epoch: a permutation of the dataset (weights None),
    or len(dataset) draws with replacement by `weights` (class balance). Under torch.distributed
    each rank takes its shard of the epoch (padded to equal length, as DistributedSampler does)."""

    def __init__(self, n: int, seed: int, weights: Sequence[float] | None = None):
        super().__init__(range(n), num_replicas=1, rank=0, shuffle=True, seed=int(seed), drop_last=False)
        self.n = int(n)
        self.drawn_epoch: int | None = None  # the epoch of the last order drawn
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.double)
        if self.weights is not None and len(self.weights) != self.n:
            raise ValueError(f"{len(self.weights)} sampling weights for {self.n} items")

    def _world(self) -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_world_size(), torch.distributed.get_rank()
        return 1, 0

    def __len__(self) -> int:
        world, _ = self._world()
        return -(-self.n // world)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self.drawn_epoch = int(self.epoch)
        g = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        if self.weights is None:
            order = torch.randperm(self.n, generator=g)  # (N,)
        else:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g)  # (N,)
        seeds = torch.randint(0, 2**62, (self.n,), generator=g)  # (N,) one per position
        world, rank = self._world()
        total = len(self) * world
        pos = torch.arange(total) % self.n  # padded with the first positions again
        mine = pos[rank::world]
        return iter([(int(order[p]), int(seeds[p])) for p in mine])


class SeededItems(Dataset):
    """Items of `base` loaded under the seeds EpochSampler gives: item (i, seed) is base[i] with
    torch's random state set to `seed` for its loading (restored afterwards), so its random
    choices are the same in any process. A plain index loads with the current random state."""

    def __init__(self, base: Any):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self.base[key]
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return self.base[int(index)]

    def __getattr__(self, name: str) -> Any:  # labels, records, rows ... of the wrapped dataset
        if name == "base":
            raise AttributeError(name)
        return getattr(self.base, name)
