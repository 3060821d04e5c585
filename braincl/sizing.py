"""Method params sized from the data and the budget, for data sets without a tuned block.

BrainCL's codec (``braincl/defaults/methods/braincl.yaml``) carries tuned values for the data sets
that have a ``by_dataset`` block (MNIST: a rate-distortion sweep; ImageNet-100, CORe50, MedMNIST:
the paper's codec). Any other data set (your own image folder) leaves the codec params null, and
the run fills them here with one rule, recorded in the run's config:

- **depth** (stride-2 stages of ``g_a``/``g_s``): the most stages, at most the paper's 4, that keep
  the latent at least 4x4 (``ceil(min(H, W) / 2**depth) >= 4``; the codec pads to a multiple of
  ``2**depth``). 28-32 px -> 3, 64 px and up -> 4.
- **N, M** (channels): the widest codec on the ladder ``N in 4, 8, 16, 24, 32, 48, 64, 96, 128``
  (128: the paper's) with ``M = N / 2`` (the MNIST codec's ratio; at least 4) whose completion
  networks and entropy tables of all tasks take at most ``CODEC_SHARE`` (a quarter) of the memory
  budget, at the run's ``decoder_precision``, so that at least three quarters stay for cues. If no
  codec fits, the smallest is used and the method's own budget check refuses the run with the bytes
  it needs.
- **max_cdf_length**: 48, the MNIST block's bound (lossless: longer symbols escape).
- **codec_batch_size, codec_lr, codec_aux_lr**: 32, 3e-3, 1e-2, the schedule of the small-codec
  sweep (``results/benchmarks/rate_distortion.md``: 1e-4, CompressAI's default for its large
  codecs, does not converge in a few hundred steps on a small one).

A value given anywhere (the experiment file, ``--set``, a ``by_dataset`` block) is never replaced."""

from __future__ import annotations

import copy
import math

CODEC_SHARE = 0.25           # the most of the budget that all tasks' decoders and tables may take
N_LADDER = (4, 8, 16, 24, 32, 48, 64, 96, 128)
MIN_LATENT = 4               # the latent keeps at least 4x4 positions
MAX_DEPTH = 4                # bmshj2018 / the paper
SMALL_CODEC = {"max_cdf_length": 48, "codec_batch_size": 32, "codec_lr": 3.0e-3, "codec_aux_lr": 1.0e-2}
SIZED = ("N", "M", "depth", *SMALL_CODEC)


def codec_depth(image_size: tuple[int, int]) -> int:
    """Most stride-2 stages (1..4) that leave a latent of at least 4x4."""
    side = min(int(s) for s in image_size)
    depth = 1
    while depth < MAX_DEPTH and math.ceil(side / 2 ** (depth + 1)) >= MIN_LATENT:
        depth += 1
    return depth


def codec_fixed_nbytes(channels: int, N: int, M: int, depth: int, num_tasks: int, precision: str,
                       completion: str, max_cdf_length: int) -> int:
    """Bytes of every task's completion network (one if shared) and entropy tables (their bound)."""
    from .codec import PRECISIONS, synthesis_net, tables_nbytes_bound
    from .memory.budget import module_nbytes

    decoder = module_nbytes(synthesis_net(M, N, channels, depth), PRECISIONS[precision])
    decoders = decoder if completion == "shared" else decoder * num_tasks
    return decoders + tables_nbytes_bound(M, max_cdf_length) * num_tasks


def size_codec(image_shape: tuple[int, int, int], budget_bytes: int | None, num_tasks: int,
               precision: str = "fp16", completion: str = "per_task") -> dict:
    """The rule of the module docstring: ``{N, M, depth, max_cdf_length, codec_*}`` plus
    ``fixed_bytes`` (what the chosen codec charges before any cue) and ``share``."""
    channels, size = int(image_shape[0]), tuple(image_shape[1:])
    depth = codec_depth(size)
    cap = math.inf if budget_bytes is None else CODEC_SHARE * budget_bytes
    chosen = None
    for N in N_LADDER:
        M = max(4, N // 2)
        fixed = codec_fixed_nbytes(channels, N, M, depth, num_tasks, precision, completion,
                                   SMALL_CODEC["max_cdf_length"])
        if chosen is None or fixed <= cap:
            chosen = {"N": N, "M": M, "fixed_bytes": fixed}
        if fixed > cap:
            break
    return {"N": chosen["N"], "M": chosen["M"], "depth": depth, **SMALL_CODEC,
            "fixed_bytes": chosen["fixed_bytes"], "share": CODEC_SHARE}


def fill_method_params(cfg: dict, image_shape: tuple[int, int, int], budget_bytes: int | None,
                       num_tasks: int) -> tuple[dict, dict | None]:
    """The config with a method's null sized params filled (BrainCL's codec; others unchanged), and
    what the rule chose (None when nothing was null)."""
    params = cfg["method"].get("params") or {}
    if cfg["method"]["name"] != "braincl" or params.get("memory_format", "cues") != "cues":
        return cfg, None
    missing = [k for k in SIZED if k in params and params[k] is None]
    if not missing:
        return cfg, None
    rule = size_codec(image_shape, budget_bytes, num_tasks, params.get("decoder_precision", "fp16"),
                      params.get("completion", "per_task"))
    out = copy.deepcopy(cfg)
    for key in missing:
        out["method"]["params"][key] = rule[key]
    return out, {"filled": missing, "rule": "braincl.sizing.size_codec", **rule}
