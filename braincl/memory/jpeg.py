"""JPEG storage of exemplars (Pillow): encoding, shared tables, decoding and exact sizes.

Shared by ``jpeg_replay`` (``baselines/jpeg_replay.py``) and BrainCL's ``memory_format: jpeg`` control
(``braincl/methods/braincl.py``), so that both store, charge and decode a JPEG exemplar the same way.

- A whole file has optimised Huffman tables (``encode_jpeg``); an abbreviated stream (Pillow's
  ``streamtype=2``) has no tables and standard Huffman coding, and decodes with the tables-only
  stream of its quality (``jpeg_tables``, Pillow's ``streamtype=1``), stored once per quality.
- Each stored exemplar is charged its stream length plus ``METADATA_BYTES``: its label (int16),
  byte length (uint32) and quality (uint8).
- ``choose_quality`` is ``jpeg_replay``'s quality rule (see its module docstring)."""

from __future__ import annotations

import functools
import io

import numpy as np
import torch
from PIL import Image

METADATA_BYTES = 2 + 4 + 1


def _pil(image: torch.Tensor) -> Image.Image:
    array = image.permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0], "L") if array.shape[2] == 1 else Image.fromarray(array, "RGB")


def encode_jpeg(image: torch.Tensor, quality: int, abbreviated: bool = False) -> bytes:
    """uint8 CHW (1 or 3 channels) -> a baseline JPEG file with optimised Huffman tables, or, with
    ``abbreviated``, a stream without tables (standard Huffman coding) that ``jpeg_tables`` completes."""
    out = io.BytesIO()
    if abbreviated:
        _pil(image).save(out, format="JPEG", quality=int(quality), streamtype=2)
    else:
        _pil(image).save(out, format="JPEG", quality=int(quality), optimize=True)
    return out.getvalue()


@functools.lru_cache(maxsize=None)
def jpeg_tables(quality: int, channels: int) -> bytes:
    """The tables-only stream (quantisation and standard Huffman tables) of one quality."""
    out = io.BytesIO()
    _pil(torch.zeros((channels, 8, 8), dtype=torch.uint8)).save(out, format="JPEG", quality=int(quality), streamtype=1)
    return out.getvalue()


def tables_nbytes(qualities, channels: int) -> int:
    """Bytes of the table streams of the distinct ``qualities``."""
    return sum(len(jpeg_tables(int(q), channels)) for q in set(qualities))


def decode_jpeg(data: bytes, tables: bytes | None = None) -> torch.Tensor:
    """A whole file, or an abbreviated stream with its ``tables`` (the tables stream without its EOI
    marker, then the image stream without its SOI marker, is one whole file)."""
    if tables is not None:
        data = tables[:-2] + data[2:]
    array = np.array(Image.open(io.BytesIO(data)))  # a writable copy
    return torch.from_numpy(array[None] if array.ndim == 2 else np.ascontiguousarray(array.transpose(2, 0, 1)))


def worst_case_nbytes(image_shape, quality: int, abbreviated: bool) -> int:
    """An upper bound of one stored exemplar at ``quality``: the larger stream of uniform noise and of
    a one-pixel checkerboard (the least compressible contents), plus metadata. Refusals before
    training use it, so that a stated minimum budget always holds one exemplar per class."""
    c, h, w = image_shape
    noise = torch.randint(0, 256, (c, h, w), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    checker = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2 * 255).to(torch.uint8).expand(c, h, w)
    return max(len(encode_jpeg(img.contiguous(), quality, abbreviated)) for img in (noise, checker)) + METADATA_BYTES


def cost(payloads) -> int:
    return sum(len(p) for p in payloads) + METADATA_BYTES * len(payloads)


def prefix_within(payloads: list[bytes], share: int) -> int:
    """How many of ``payloads``, taken in order, fit in ``share`` bytes."""
    sizes = np.cumsum([len(p) + METADATA_BYTES for p in payloads])
    return int(np.searchsorted(sizes, share, side="right"))


def choose_quality(images: torch.Tensor, qualities: list[int], target: int, final_share: int,
                   abbreviated: bool = False) -> int:
    """``jpeg_replay``'s quality rule: the highest of ``qualities`` at which the first ``target`` of
    ``images`` fit in ``final_share`` bytes (metadata included); if none does, the lowest."""
    for q in sorted(qualities, reverse=True):
        if cost([encode_jpeg(img, q, abbreviated) for img in images[:target]]) <= final_share:
            return q
    return min(qualities)


def encode_class(images: torch.Tensor, quality: int, share: int, abbreviated: bool = False) -> list[bytes]:
    """Encode ``images`` in order at ``quality`` until the next one would overflow ``share``."""
    payloads, used = [], 0
    for img in images:
        data = encode_jpeg(img, quality, abbreviated)
        if used + len(data) + METADATA_BYTES > share:
            break
        payloads.append(data)
        used += len(data) + METADATA_BYTES
    return payloads
