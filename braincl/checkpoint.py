"""The resume checkpoint: ``torch.save`` bytes behind a small header that carries their SHA-256.

Layout: ``MAGIC`` (12 B), payload length (uint64, little-endian), SHA-256 of the payload (32 B),
then the payload. A truncated, empty or modified file is recognised before unpickling, and every
failure is a ``CheckpointError`` whose one-line message names the file, says what is wrong and
gives the two ways forward: delete the file to restart from task 1, or restore it."""

from __future__ import annotations

import glob
import hashlib
import io
import struct
from pathlib import Path

MAGIC = b"BRAINCL-CKPT"
HEADER = struct.Struct("<12sQ32s")  # magic, payload length, sha256 of the payload


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be trusted or read."""


def _fail(path: Path, what: str) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} {what}; delete it to restart the run from task 1, or restore it from a copy")


def encode(obj) -> bytes:
    """The file's bytes for ``obj``: header, then the ``torch.save`` payload."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    return HEADER.pack(MAGIC, len(payload), hashlib.sha256(payload).digest()) + payload


def save(path: str | Path, obj) -> None:
    """Write atomically: a killed run leaves the previous checkpoint or the new one, never half
    (and possibly the temporary file, which ``remove_stale_temporaries`` clears at the next start).
    The file gets the mode of every other output (``metrics.json``, logs): what a plain ``open``
    gives under the user's umask, not the 0600 of the temporary file."""
    from .record import _umask, atomic_write_bytes

    atomic_write_bytes(path, encode(obj), mode=0o666 & ~_umask())


def remove_stale_temporaries(path: str | Path) -> list[Path]:
    """Remove the temporary files that atomic writes of ``path`` left when their process was killed
    mid-write (``.<name>.<random>.tmp`` beside it, as ``braincl.record.atomic_write_bytes`` names
    them). Only safe while holding the folder's run lock: a live writer's file would go too."""
    path = Path(path)
    stale = sorted(path.parent.glob(f".{glob.escape(path.name)}.*.tmp"))
    for tmp in stale:
        tmp.unlink(missing_ok=True)
    return stale


def read_payload(path: str | Path) -> bytes:
    """The checked payload bytes of a checkpoint file; ``CheckpointError`` if it is damaged."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise _fail(path, f"cannot be read ({err.strerror or err})") from None
    if not data:
        raise _fail(path, "is empty (0 bytes)")
    if len(data) < HEADER.size:
        if MAGIC.startswith(data[: len(MAGIC)]):
            raise _fail(path, f"is truncated: {len(data)} bytes, shorter than its {HEADER.size}-byte header")
        raise _fail(path, "is not a braincl checkpoint (no checkpoint header)")
    magic, length, digest = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise _fail(path, "is not a braincl checkpoint (no checkpoint header; it may come from an older "
                          "version of the suite)")
    payload = data[HEADER.size:]
    if len(payload) < length:
        raise _fail(path, f"is truncated: {len(payload)} of its {length} payload bytes are present")
    if len(payload) > length:
        raise _fail(path, f"is damaged: {len(payload) - length} bytes follow the end of its payload")
    if hashlib.sha256(payload).digest() != digest:
        raise _fail(path, "is damaged: its contents do not match the SHA-256 checksum written with them")
    return payload


def load(path: str | Path, map_location=None):
    """The object saved by ``save``, after checking the file's checksum."""
    import pickle

    import torch

    path = Path(path)
    payload = read_payload(path)
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, ValueError) as err:
        # the checksum matched, so the file is as written, but this version of the code cannot read it
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise _fail(path, f"cannot be loaded by this version of the suite ({reason})") from None
