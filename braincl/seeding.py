"""Seeds that reach every RNG: python, numpy, torch (CPU and CUDA) and DataLoader workers.

Each task re-seeds from (run seed, task index). A run resumed at task t therefore draws the same
random numbers as an uninterrupted one, without pickling RNG states."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(*parts) -> int:
    digest = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def worker_init_fn(worker_id: int) -> None:
    # torch gives each worker base_seed + worker_id; pass it on to numpy and random.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_generator() -> torch.Generator:
    """A DataLoader generator drawn from torch's (seeded) global RNG."""
    return torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
