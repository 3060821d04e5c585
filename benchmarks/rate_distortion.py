"""Rate-distortion of BrainCL's cue codec on MNIST 5k against JPEG (Pillow) and raw uint8.

For each lambda convention and lambda, a codec (CompressAI bmshj2018-factorized parts; by default
the MNIST setting of braincl: N=16, M=8, two stride-2 stages) is trained on the mnist5k training
split and measured on the held-out test split: bytes per sample (the coded bytes, and with BrainCL's
charged per-cue metadata), PSNR of the recalled uint8 images, and encode/decode throughput. The
per-task decoder and entropy tables are reported beside it, not amortised into the rate. Every codec
row records its ``lambda_convention`` (``braincl.codec.LAMBDA_CONVENTIONS``): under ``compressai`` a
higher lambda gives larger cues, under ``rate`` (the paper's entropy weight) smaller ones.

    python benchmarks/rate_distortion.py --out results/benchmarks
    python benchmarks/rate_distortion.py --conventions compressai rate --out results/benchmarks
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def jpeg_rows(images: torch.Tensor, qualities) -> list[dict]:
    from PIL import Image

    from braincl.codec import psnr

    rows = []
    for q in qualities:
        sizes, decoded = [], []
        t0 = time.perf_counter()
        blobs = []
        for img in images[:, 0].numpy():
            buf = io.BytesIO()
            Image.fromarray(img, mode="L").save(buf, format="JPEG", quality=q)
            blobs.append(buf.getvalue())
            sizes.append(len(blobs[-1]))
        t1 = time.perf_counter()
        for b in blobs:
            decoded.append(np.asarray(Image.open(io.BytesIO(b))))
        t2 = time.perf_counter()
        rec = torch.as_tensor(np.stack(decoded))[:, None]
        rows.append({"method": "jpeg", "setting": f"quality={q}", "bytes_per_sample": float(np.mean(sizes)),
                     "bytes_per_sample_with_metadata": float(np.mean(sizes)) + 2, "psnr_db": psnr(images, rec),
                     "encode_img_s": len(images) / (t1 - t0), "decode_img_s": len(images) / (t2 - t1),
                     "decoder_bytes": 0})
    return rows


def codec_row(train: torch.Tensor, test: torch.Tensor, lmbda: float, args, convention: str = "compressai") -> dict:
    from braincl.codec import build_codec, encode, freeze, psnr, train_codec
    from braincl.memory.cues import CUE_HEADER

    torch.manual_seed(args.seed)
    codec = build_codec(1, args.N, args.M, depth=args.depth)
    t0 = time.perf_counter()
    stats = train_codec(codec, train, lmbda=lmbda, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                        aux_lr=10 * args.lr, progress=False, seed=args.seed, lambda_convention=convention)
    t1 = time.perf_counter()
    completion = freeze(codec, tuple(test.shape[-2:]), args.precision)
    t2 = time.perf_counter()
    strings, shape = encode(codec, test, batch_size=512)
    t3 = time.perf_counter()
    recalled = completion.recall(strings, shape, batch_size=512)
    t4 = time.perf_counter()
    size = float(np.mean([len(s) for s in strings]))
    setting = f"lambda={lmbda:g}" + ("" if convention == "compressai" else f" ({convention})")
    return {"method": "braincl_codec", "setting": setting, "lambda": lmbda, "lambda_convention": convention,
            "bytes_per_sample": size, "bytes_per_sample_with_metadata": size + CUE_HEADER.size,
            "psnr_db": psnr(test, recalled), "encode_img_s": len(test) / (t3 - t2), "decode_img_s": len(test) / (t4 - t3),
            "decoder_bytes": completion.decoder_nbytes(), "entropy_table_bytes": completion.tables_nbytes(),
            "train_s": t1 - t0, "train_bpp_estimate": stats["bpp"]}


def plot(df: pd.DataFrame, out: Path) -> None:
    """The suite's rate-distortion figure (analysis/figures.py, the same one ``python -m analysis``
    draws into results/figures), so the benchmark and the report show one picture."""
    from analysis import figures, style

    style.apply()
    fig, _ = figures.rate_distortion(out)
    style.save(fig, out, "rate_distortion")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    ap.add_argument("--lambdas", type=float, nargs="+", default=[1e-3, 1e-2, 1e-1])
    ap.add_argument("--conventions", nargs="+", default=["compressai"], choices=["compressai", "rate"],
                    help="lambda conventions (braincl.codec.LAMBDA_CONVENTIONS); each lambda is run under each")
    ap.add_argument("--qualities", type=int, nargs="+", default=[5, 10, 25, 50, 75, 95])
    ap.add_argument("--N", type=int, default=16)  # defaults: braincl's mnist5k codec (defaults/methods/braincl.yaml)
    ap.add_argument("--M", type=int, default=8)
    ap.add_argument("--depth", type=int, default=2, help="stride-2 stages (the paper's codec has 4)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--precision", default="fp16", choices=["fp32", "fp16"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--plot-only", action="store_true", help="redraw the figure from an existing CSV in --out")
    args = ap.parse_args(argv)
    if args.plot_only:
        plot(pd.read_csv(args.out / "rate_distortion.csv"), args.out)
        return
    torch.set_num_threads(args.threads)
    from braincl.codec import LAMBDA_CONVENTIONS
    from braincl.data.mnist import build_mnist5k
    from braincl.memory.cues import CUE_HEADER

    splits = build_mnist5k(None, {"train_per_class": 400, "test_per_class": 100, "split_seed": 0})
    train = splits.train.read_many(np.arange(len(splits.train)))
    test = splits.test.read_many(np.arange(len(splits.test)))
    rows = [{"method": "raw", "setting": "uint8", "bytes_per_sample": float(test[0].numel()),
             "bytes_per_sample_with_metadata": float(test[0].numel()) + 2, "psnr_db": float("inf"),
             "encode_img_s": None, "decode_img_s": None, "decoder_bytes": 0}]
    rows += jpeg_rows(test, args.qualities)
    rows += [codec_row(train, test, lm, args, convention) for convention in args.conventions for lm in args.lambdas]
    df = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "rate_distortion.csv", index=False)
    meta = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
            "processor": platform.processor(), "cpu_count": torch.get_num_threads(), "torch": torch.__version__,
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "data": "mnist5k: codec trained on the 4000-image train split, measured on the 1000-image test split",
            "metadata_bytes": (f"codec: {CUE_HEADER.size} B per cue (label int16, length uint16; the CRC32 is not "
                               "charged); jpeg and raw: 2 B label"),
            "lambda_conventions": {c: LAMBDA_CONVENTIONS[c] for c in args.conventions},
            "rows": json.loads(df.to_json(orient="records"))}
    (args.out / "rate_distortion.json").write_text(json.dumps(meta, indent=2))
    plot(df, args.out)
    print(df.to_string(index=False))


if __name__ == "__main__":
    main()
