"""BrainCL's per-task codec: pattern separation (``g_a``), entropy bottleneck, pattern completion (``g_s``).

The architecture is CompressAI's bmshj2018-factorized model (Balle et al., ICLR 2018;
``compressai.models.FactorizedPrior``): four stride-2 5x5 convolutions with GDN, a mirrored
decoder and a learned factorized ``EntropyBottleneck``, with N and M configurable and any number of
image channels. Training minimises a rate-distortion loss while a separate optimizer fits the
bottleneck's quantiles with ``aux_loss()``. Two conventions weigh it (``LAMBDA_CONVENTIONS``):
``compressai`` (the default) is CompressAI's ``lambda * 255^2 * MSE + bpp``, where lambda weighs the
distortion, so a higher lambda gives larger, sharper cues; ``rate`` is the paper's "entropy weight",
``MSE + lambda * bpp`` (x in [0, 1]), where a higher lambda gives smaller cues. The paper's value,
lambda = 1e-2, therefore means different codecs under the two (docs/departures.md).

Life of a codec (PROTOCOLS.md, "CompressAI"): train -> ``update(force=True)`` (a stale CDF table
would silently mis-code) -> ``freeze``: snapshot ``g_s`` at its storage precision and the entropy
tables into a ``CompletionNet`` -> ``encode`` every training image into bytes -> drop ``g_a``.
Only the ``CompletionNet`` and the bytes are kept, and only they are charged.

CompressAI is imported inside functions: importing it takes seconds, and the CLI's ``--help`` and
config validation must stay fast."""

from __future__ import annotations

import math
import struct
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

DOWNSAMPLING = 16  # four stride-2 layers: the paper's (bmshj2018) depth
PRECISIONS = {"fp32": 4, "fp16": 2}


# ---------------------------------------------------------------------------------------------- parts
def analysis_net(channels: int, N: int, M: int, depth: int = 4) -> nn.Sequential:
    """Pattern separation ``g_a``: image -> latent at 1/2**depth resolution. ``depth=4`` is the
    bmshj2018 layout (conv-GDN x3, conv); a smaller depth drops middle conv-GDN pairs, which keeps
    a spatial latent on 28-32 px images (4 stages leave MNIST a 2x2 latent)."""
    from compressai.layers import GDN
    from compressai.models.utils import conv

    if depth < 1:
        raise ValueError(f"codec depth must be at least 1, got {depth}")
    if depth == 1:
        return nn.Sequential(conv(channels, M))
    layers = [conv(channels, N), GDN(N)]
    for _ in range(depth - 2):
        layers += [conv(N, N), GDN(N)]
    return nn.Sequential(*layers, conv(N, M))


def synthesis_net(M: int, N: int, channels: int, depth: int = 4) -> nn.Sequential:
    """Pattern completion ``g_s``: latent -> image, the mirror of ``analysis_net``."""
    from compressai.layers import GDN
    from compressai.models.utils import deconv

    if depth < 1:
        raise ValueError(f"codec depth must be at least 1, got {depth}")
    if depth == 1:
        return nn.Sequential(deconv(M, channels))
    layers = [deconv(M, N), GDN(N, inverse=True)]
    for _ in range(depth - 2):
        layers += [deconv(N, N), GDN(N, inverse=True)]
    return nn.Sequential(*layers, deconv(N, channels))


def build_codec(channels: int, N: int, M: int, g_s: nn.Module | None = None, depth: int = 4) -> nn.Module:
    """A ``FactorizedPrior`` for ``channels``-channel images. ``g_s`` may be passed in to share one
    completion network between tasks (the ``completion: shared`` ablation)."""
    from compressai.entropy_models import EntropyBottleneck
    from compressai.models import CompressionModel, FactorizedPrior

    if N < 1 or M < 1:
        raise ValueError(f"codec N and M must be positive, got N={N}, M={M}")

    class CueCodec(FactorizedPrior):
        """FactorizedPrior's forward/compress/decompress with any channel count (its own
        ``__init__`` hard-codes 3 channels, so the parts are built here)."""

        def __init__(self):
            CompressionModel.__init__(self)
            self.entropy_bottleneck = EntropyBottleneck(M)
            self.g_a = analysis_net(channels, N, M, depth)
            self.g_s = g_s if g_s is not None else synthesis_net(M, N, channels, depth)
            self.N, self.M = N, M
            self.downsampling = 2**depth

    return CueCodec()


def pad_to_multiple(x: torch.Tensor, multiple: int = DOWNSAMPLING) -> torch.Tensor:
    """Replicate-pad H and W up to a multiple of 16 (MNIST: 28 -> 32); decoding crops back."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x
    return F.pad(x, (0, pw, 0, ph), mode="replicate")


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> floats in [0, 1]."""
    return images.float().div_(255.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """floats -> uint8 storage form: clamp to [0, 1], scale by 255, round."""
    return x.clamp(0, 1).mul(255).round_().to(torch.uint8)


# ---------------------------------------------------------------------------------------------- training
LAMBDA_CONVENTIONS = {
    "compressai": "lambda * 255^2 * MSE + bpp (CompressAI's RateDistortionLoss): higher lambda, larger cues",
    "rate": "MSE + lambda * bpp (the paper's entropy weight): higher lambda, smaller cues",
}


def rate_distortion_loss(out: dict, x: torch.Tensor, lmbda: float, convention: str = "compressai") -> dict:
    """The rate-distortion loss under ``convention`` (``LAMBDA_CONVENTIONS``; x in [0, 1], MSE on
    that scale). bpp counts the padded pixels' bits against the padded image, as the coder does."""
    if convention not in LAMBDA_CONVENTIONS:
        raise ValueError(f"lambda_convention must be one of {', '.join(LAMBDA_CONVENTIONS)}, not {convention!r}")
    num_pixels = x.shape[0] * x.shape[-2] * x.shape[-1]
    bpp = sum(torch.log(lk).sum() for lk in out["likelihoods"].values()) / (-math.log(2) * num_pixels)
    mse = F.mse_loss(out["x_hat"], x)
    loss = lmbda * 255**2 * mse + bpp if convention == "compressai" else mse + lmbda * bpp
    return {"loss": loss, "mse": mse, "bpp": bpp}


def train_codec(codec: nn.Module, images: torch.Tensor, *, lmbda: float, epochs: int = 1, steps: int | None = None,
                batch_size: int = 16, lr: float = 1e-4, aux_lr: float = 1e-3, device: torch.device | str = "cpu",
                progress: bool = True, desc: str = "codec", seed: int = 0, compute=None,
                count_flops: bool = True, lambda_convention: str = "compressai") -> dict:
    """Fit the codec on uint8 images (N, C, H, W) and return the last epoch's mean loss, MSE and bpp.

    ``steps`` (if given) replaces ``epochs``; ``lambda_convention`` says how ``lmbda`` weighs the
    loss (``rate_distortion_loss``). The aux optimizer only sees the quantiles, as in
    CompressAI's example training script; the main optimizer sees everything else. ``compute``
    (a ``braincl.compute.ComputeLog``) gets the loop's steps, samples, FLOPs and wall time under
    the encoding phase ``codec``."""
    from tqdm.auto import tqdm

    from .compute import FlopMeter

    if len(images) == 0:
        raise ValueError("train_codec: no images to train on")
    if lambda_convention not in LAMBDA_CONVENTIONS:
        raise ValueError(f"lambda_convention must be one of {', '.join(LAMBDA_CONVENTIONS)}, not {lambda_convention!r}")
    device = torch.device(device)
    codec.to(device).train()
    aux_params = [p for n, p in codec.named_parameters() if n.endswith(".quantiles") and p.requires_grad]
    main_params = [p for n, p in codec.named_parameters() if not n.endswith(".quantiles") and p.requires_grad]
    opt = torch.optim.Adam(main_params, lr=lr)
    aux_opt = torch.optim.Adam(aux_params, lr=aux_lr)
    data = images  # uint8; converted per batch (a float copy of a whole task is 4x its bytes)
    per_epoch = max(1, math.ceil(len(data) / batch_size))
    total = steps if steps is not None else epochs * per_epoch
    gen = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    sums = {"loss": 0.0, "mse": 0.0, "bpp": 0.0}
    counted = 0
    flops, drawn = FlopMeter(count_flops and compute is not None), 0
    bar = tqdm(total=total, desc=desc, disable=not progress or total == 0, leave=False, dynamic_ncols=True)
    t0 = time.perf_counter()
    for step in range(total):
        if len(order) < batch_size:  # reshuffle once the current permutation runs out
            order = torch.cat([order, torch.randperm(len(data), generator=gen)])
        idx, order = order[:batch_size], order[batch_size:]
        x = pad_to_multiple(to_unit(data[idx]), codec.downsampling).to(device)
        drawn += len(x)
        with flops.step(tuple(x.shape)):
            out = codec(x)
            loss = rate_distortion_loss(out, x, lmbda, lambda_convention)
            opt.zero_grad(set_to_none=True)
            loss["loss"].backward()
            opt.step()
            aux = codec.aux_loss()
            aux_opt.zero_grad(set_to_none=True)
            aux.backward()
            aux_opt.step()
        if step >= total - per_epoch:  # report the last epoch only
            for k in sums:
                sums[k] += float(loss[k].detach())
            counted += 1
        bar.update(1)
    bar.close()
    if compute is not None:
        compute.add("codec", steps=total, samples=drawn, flops=flops.totals, wall_s=round(time.perf_counter() - t0, 3))
    codec.eval()
    return {"steps": total, **{k: v / max(counted, 1) for k, v in sums.items()}}


# ---------------------------------------------------------------------------------------------- frozen memory
class CueDecodeError(RuntimeError):
    """A cue could not be decoded (checksum mismatch or a coder failure)."""


CDF_PRECISION = 16  # CompressAI's entropy_coder_precision: a quantized CDF runs from 0 to 2**16
TABLES_HEADER = struct.Struct("<HBB")  # channels, offset width code, length width code
_SIGNED = (np.dtype("<i1"), np.dtype("<i2"), np.dtype("<i4"))
_UNSIGNED = (np.dtype("<u1"), np.dtype("<u2"), np.dtype("<u4"))


def _narrowest(values: np.ndarray, dtypes) -> int:
    """Index of the first of ``dtypes`` that holds every one of ``values``."""
    for code, dtype in enumerate(dtypes):
        info = np.iinfo(dtype)
        if values.size == 0 or (values.min() >= info.min and values.max() <= info.max):
            return code
    raise ValueError(f"entropy tables: values up to {values.max()} do not fit {dtypes[-1]}")


def pack_tables(entropy_bottleneck: nn.Module) -> bytes:
    """An ``update()``d ``EntropyBottleneck``'s tables in their smallest decodable form, the form
    that is charged. What ``EntropyBottleneck.decompress`` reads is the quantized CDF of each
    channel (``_cdf_length`` entries of int32 ``_quantized_cdf``, zero-padded to the longest), the
    channel's ``_offset`` and the median (``quantiles[:, 0, 1]``, added back after decoding). Layout:

    - header (4 B): channels uint16, then the width codes of the offsets and of the lengths;
    - medians: fp32 per channel (decoded latents are ``symbol + median``, so they are kept exact);
    - offsets: per channel, at the narrowest of int8/int16/int32 that holds them all;
    - lengths: symbols per channel (``_cdf_length - 2``), at the narrowest of uint8/uint16/uint32;
    - CDFs: per channel, its ``symbols`` inner values as uint16. A CDF quantized at 16 bits starts
      at 0 and ends at 2**16 (its tail entry included), and ``pmf_to_quantized_cdf`` gives every
      symbol a frequency of at least 1, so the values between lie in 1..65535; the two ends are
      implied, the padding is not stored.

    The density network that produced the CDFs and the other quantiles are not needed to decode
    and are not stored. ``unpack_tables`` rebuilds the module exactly (tested)."""
    eb = entropy_bottleneck
    if int(getattr(eb, "entropy_coder_precision", CDF_PRECISION)) != CDF_PRECISION:
        raise ValueError(f"pack_tables: entropy_coder_precision must be {CDF_PRECISION}, "
                         f"not {eb.entropy_coder_precision}")
    if eb._quantized_cdf.numel() == 0:
        raise ValueError("pack_tables: the entropy bottleneck has no CDF tables; call update(force=True) first")
    cdf = eb._quantized_cdf.detach().cpu().numpy().astype(np.int64)
    lengths = eb._cdf_length.detach().cpu().numpy().astype(np.int64).reshape(-1)
    offsets = eb._offset.detach().cpu().numpy().astype(np.int64).reshape(-1)
    medians = eb.quantiles[:, 0, 1].detach().cpu().float().numpy()
    inner = []
    for c, n in enumerate(lengths):
        row = cdf[c, :n]
        if row[0] != 0 or row[-1] != 2**CDF_PRECISION or (n > 2 and (row[1:-1].min() < 1 or row[1:-1].max() >= 2**16)):
            raise ValueError(f"pack_tables: channel {c}'s CDF is not a {CDF_PRECISION}-bit quantized CDF "
                             f"(from 0 to 2**{CDF_PRECISION} with inner values in 1..65535)")
        inner.append(row[1:-1])
    symbols = lengths - 2
    off_code, len_code = _narrowest(offsets, _SIGNED), _narrowest(symbols, _UNSIGNED)
    return b"".join([TABLES_HEADER.pack(len(lengths), off_code, len_code), medians.astype("<f4").tobytes(),
                     offsets.astype(_SIGNED[off_code]).tobytes(), symbols.astype(_UNSIGNED[len_code]).tobytes(),
                     np.concatenate(inner).astype("<u2").tobytes()])


def unpack_tables(data: bytes) -> nn.Module:
    """A frozen ``EntropyBottleneck`` that decodes with the tables of ``pack_tables(data)``: the same
    ``_quantized_cdf`` (zero-padded), ``_offset``, ``_cdf_length`` and medians as the module that
    was packed, without its density network."""
    from compressai.entropy_models import EntropyBottleneck

    M, off_code, len_code = TABLES_HEADER.unpack_from(data)
    at = TABLES_HEADER.size
    def take(dtype, count):
        nonlocal at
        out = np.frombuffer(data, dtype=dtype, count=count, offset=at)
        at += out.nbytes
        return out.astype(np.int64) if dtype.kind in "iu" else out
    medians = take(np.dtype("<f4"), M)
    offsets = take(_SIGNED[off_code], M)
    symbols = take(_UNSIGNED[len_code], M)
    inner = take(np.dtype("<u2"), int(symbols.sum()))
    if at != len(data):
        raise ValueError(f"unpack_tables: {len(data) - at} bytes left over; not a pack_tables() stream")
    cdf = torch.zeros((M, int(symbols.max()) + 2), dtype=torch.int32)
    start = 0
    for c, n in enumerate(symbols.tolist()):
        cdf[c, 1:n + 1] = torch.from_numpy(inner[start:start + n].astype(np.int32))
        cdf[c, n + 1] = 2**CDF_PRECISION
        start += n
    eb = EntropyBottleneck(M)
    eb.matrices, eb.biases, eb.factors = nn.ParameterList(), nn.ParameterList(), nn.ParameterList()
    with torch.no_grad():
        eb.quantiles.zero_()
        eb.quantiles[:, 0, 1] = torch.from_numpy(medians.copy())
    eb._quantized_cdf = cdf
    eb._offset = torch.from_numpy(offsets.astype(np.int32))
    eb._cdf_length = torch.from_numpy((symbols + 2).astype(np.int32))
    eb.requires_grad_(False)
    return eb.eval()


def round_to_precision_(module: nn.Module, precision: str) -> None:
    """Store a module's floating tensors at ``precision``: fp16 weights are rounded to fp16 and
    kept as fp32 numbers that are exactly representable in fp16, so decoding on any device uses
    exactly the stored values."""
    if precision not in PRECISIONS:
        raise ValueError(f"decoder precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "fp32":
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                t.copy_(t.half().float())


@dataclass
class CompletionNet:
    """One task's frozen pattern-completion network and entropy tables: everything needed to turn
    that task's cues back into images. ``g_s`` may be shared between tasks (``completion: shared``);
    the entropy tables are always per task, because a string decodes only with the exact CDFs that
    encoded it."""

    g_s: nn.Module
    entropy: nn.Module              # an EntropyBottleneck rebuilt from its packed tables (``unpack_tables``)
    image_size: tuple[int, int]     # storage resolution (H, W); decoded images are cropped to it
    precision: str = "fp32"

    def decoder_nbytes(self) -> int:
        """g_s parameters and buffers at the stored precision (GDN's reparametrisation pedestal and
        bounds are buffers and are stored too)."""
        from .memory.budget import module_nbytes

        return module_nbytes(self.g_s, PRECISIONS[self.precision])

    def tables_nbytes(self) -> int:
        """Exact bytes of the entropy tables in their stored form (``pack_tables``): uint16 CDF
        values, narrow offsets and lengths, fp32 medians."""
        return len(pack_tables(self.entropy))

    def to(self, device) -> "CompletionNet":
        self.g_s.to(device)
        self.entropy.to(device)
        return self

    @torch.no_grad()
    def decode_latents(self, strings: list[bytes], shape: tuple[int, int]) -> torch.Tensor:
        return self.entropy.decompress(list(strings), tuple(shape))

    @torch.no_grad()
    def synthesize(self, y_hat: torch.Tensor) -> torch.Tensor:
        """Latent -> float image in [0, 1] at storage resolution."""
        h, w = self.image_size
        return self.g_s(y_hat)[..., :h, :w].clamp(0, 1)

    @torch.no_grad()
    def recall(self, strings: list[bytes], shape: tuple[int, int], batch_size: int = 512,
               device: torch.device | str = "cpu") -> torch.Tensor:
        """Decode cues into uint8 images (N, C, H, W) at storage resolution, in large batches."""
        self.g_s.eval()
        device = torch.device(device)
        out = []
        for start in range(0, len(strings), batch_size):
            y_hat = self.decode_latents(strings[start:start + batch_size], shape).to(device)
            out.append(to_uint8(self.synthesize(y_hat)).cpu())
        if not out:
            return torch.zeros((0,), dtype=torch.uint8)
        return torch.cat(out)


@torch.no_grad()
def cap_cdf_length_(entropy_bottleneck: nn.Module, max_length: int | None) -> None:
    """Narrow each channel's quantile range around its median so that ``update()`` builds CDFs of
    at most ``max_length`` symbols. Coding stays lossless: CompressAI's rANS coder sends a symbol
    outside the table as the escape symbol plus bypass bits. What this buys is a bound on the
    tables' bytes that holds before training, so that a method can refuse a budget up front."""
    if max_length is None:
        return
    if max_length < 1:
        raise ValueError(f"max_cdf_length must be at least 1, got {max_length}")
    q = entropy_bottleneck.quantiles  # (M, 1, 3): lower tail, median, upper tail
    half = (max_length - 1) // 2
    median = q[:, 0, 1]
    q[:, 0, 0] = torch.maximum(q[:, 0, 0], median - half)
    q[:, 0, 2] = torch.minimum(q[:, 0, 2], median + (max_length - 1 - half))


def tables_nbytes_bound(M: int, max_length: int) -> int:
    """Bytes of one task's stripped entropy tables when every channel's CDF has ``max_length``
    symbols: the most ``cap_cdf_length_`` lets ``update()`` build."""
    from compressai.entropy_models import EntropyBottleneck

    eb = EntropyBottleneck(M)
    with torch.no_grad():
        eb.quantiles[:, 0, 0] = -float(max_length)
        eb.quantiles[:, 0, 1] = 0.0
        eb.quantiles[:, 0, 2] = float(max_length)
    cap_cdf_length_(eb, max_length)
    eb.update(force=True)
    return len(pack_tables(eb))


def cue_nbytes_bound(latent_shape: tuple[int, int], M: int) -> int:
    """A cue's bytes when every latent symbol is inside its table: rANS spends at most
    ``entropy_coder_precision`` (16) bits on a symbol, plus its 4-byte final state."""
    return 2 * M * int(latent_shape[0]) * int(latent_shape[1]) + 4


def freeze(codec: nn.Module, image_size: tuple[int, int], precision: str = "fp32",
           max_cdf_length: int | None = None) -> CompletionNet:
    """Snapshot a trained codec for storage: cap its CDF length (``cap_cdf_length_``), refresh its
    CDF tables (``force=True``), round ``g_s`` to the storage precision and freeze it, and keep the
    entropy model as it is stored: rebuilt from its packed tables (``pack_tables``), so every
    recall decodes with exactly the bytes that are charged. Encoding afterwards still uses the
    codec's own bottleneck, whose tables equal the snapshot's."""
    codec.eval()
    cap_cdf_length_(codec.entropy_bottleneck, max_cdf_length)
    codec.update(force=True)
    round_to_precision_(codec.g_s, precision)
    codec.g_s.requires_grad_(False)
    return CompletionNet(g_s=codec.g_s, entropy=unpack_tables(pack_tables(codec.entropy_bottleneck)),
                         image_size=tuple(image_size), precision=precision)


@torch.no_grad()
def encode(codec: nn.Module, images: torch.Tensor, batch_size: int = 512,
           device: torch.device | str = "cpu") -> tuple[list[bytes], tuple[int, int]]:
    """uint8 images -> one arithmetic-coded byte string per image, plus the latent shape (H/16, W/16)
    that ``decompress`` needs. Call after ``freeze`` (which refreshes the CDF tables)."""
    codec.eval()
    strings: list[bytes] = []
    shape: tuple[int, int] | None = None
    for start in range(0, len(images), batch_size):
        x = pad_to_multiple(to_unit(images[start:start + batch_size]), codec.downsampling).to(device)
        out = codec.compress(x)
        strings.extend(out["strings"][0])
        shape = tuple(int(s) for s in out["shape"])
    if shape is None:
        raise ValueError("encode: no images")
    return strings, shape


def quantized_forward(codec: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode forward pass's quantized latent and reconstruction (float, cropped): what a
    stored cue must decode to exactly."""
    codec.eval()
    with torch.no_grad():
        x = pad_to_multiple(to_unit(images), codec.downsampling)
        y_hat, _ = codec.entropy_bottleneck(codec.g_a(x), training=False)
        h, w = images.shape[-2:]
        return y_hat, codec.g_s(y_hat)[..., :h, :w].clamp(0, 1)


def psnr(original: torch.Tensor, recalled: torch.Tensor) -> float:
    """PSNR in dB between two uint8 image batches (peak 255), over all pixels."""
    mse = F.mse_loss(recalled.float(), original.float()).item()
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)
