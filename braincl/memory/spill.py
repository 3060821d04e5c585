"""Host-memory guard for BrainCL's large uint8 arrays: a task's training images and the decoded cues of
a phase (``cache_recall``). At paper scale these reach gigabytes (an ImageNet-100 task: 13,000
images of 150,528 B = 1.96 GB; 280 MB of 224-px cues decode to several GB). Each such array is
allocated through ``uint8_buffer``: in RAM when it fits the job's memory with room to spare, else in
a memory-mapped file (decoded batch by batch, written straight into the map), whose clean pages the
kernel can drop and read back from disk instead of the job being killed.

Both placements hold exactly the same bytes, filled by the same batches, so the choice never changes
a result; it is made per array from the job's request and logged on stderr. The request is, in
order: ``BRAINCL_HOST_MEMORY`` (bytes with units), the SLURM allocation (``SLURM_MEM_PER_NODE``, or
``SLURM_MEM_PER_CPU`` x ``SLURM_CPUS_PER_TASK``, in MB), the cgroup's memory limit; none of them:
no limit, always RAM. ``BRAINCL_SPILL=always|never`` forces the placement (tests, benchmarks)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

# Share of the request that resident arrays may reach before the next one goes to a file: the rest
# is for the model, optimizer, activations (on a CPU) and loader workers.
RESIDENT_SHARE = 0.6
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_request() -> int | None:
    """Bytes this job may use (see the module docstring for the sources), or None."""
    from ..units import parse_bytes

    if os.environ.get("BRAINCL_HOST_MEMORY"):
        return int(parse_bytes(os.environ["BRAINCL_HOST_MEMORY"]))
    if os.environ.get("SLURM_MEM_PER_NODE"):
        return int(os.environ["SLURM_MEM_PER_NODE"]) * 2**20
    if os.environ.get("SLURM_MEM_PER_CPU"):
        return int(os.environ["SLURM_MEM_PER_CPU"]) * int(os.environ.get("SLURM_CPUS_PER_TASK", "1")) * 2**20
    for path in _CGROUP_FILES:
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # "max" or a huge sentinel: no limit
            return int(text)
    return None


def resident_bytes() -> int:
    """This process's resident set size now (Linux /proc; 0 where it is not readable)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def should_spill(nbytes: int) -> bool:
    mode = os.environ.get("BRAINCL_SPILL", "auto")
    if mode not in ("auto", "always", "never"):
        raise ValueError(f"BRAINCL_SPILL={mode!r}: use auto, always or never")
    if mode != "auto":
        return mode == "always"
    limit = memory_request()
    return limit is not None and resident_bytes() + nbytes > RESIDENT_SHARE * limit


def uint8_buffer(shape: tuple[int, ...], what: str) -> torch.Tensor:
    """An uninitialised uint8 tensor of ``shape``: in RAM, or backed by a memory-mapped temporary
    file (under ``TMPDIR``; unlinked at once, so it vanishes with the last reference)."""
    nbytes = int(np.prod(shape, dtype=np.int64))
    if nbytes == 0 or not should_spill(nbytes):
        return torch.empty(shape, dtype=torch.uint8)
    fd, path = tempfile.mkstemp(prefix="braincl-", suffix=".u8")
    os.close(fd)
    try:
        array = np.memmap(path, dtype=np.uint8, mode="w+", shape=tuple(shape))
    finally:
        os.unlink(path)
    print(f"braincl: {what}: {nbytes / 2**20:.0f} MiB would take resident memory past "
          f"{RESIDENT_SHARE:.0%} of the job's {(memory_request() or 0) / 2**20:.0f} MiB; held in a "
          "memory-mapped file instead", file=sys.stderr, flush=True)
    return torch.from_numpy(array)


def read_images(source, indices, what: str, chunk: int = 256) -> torch.Tensor:
    """``source.read_many(indices)`` written chunk by chunk into one ``uint8_buffer``: the same
    bytes without the per-image list that ``torch.stack`` holds beside its result."""
    indices = np.asarray(indices, dtype=np.int64)
    out = uint8_buffer((len(indices), source.channels, *source.size), what)
    for start in range(0, len(indices), chunk):
        out[start:start + chunk] = source.read_many(indices[start:start + chunk])
    return out
