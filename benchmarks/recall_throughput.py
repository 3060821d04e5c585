"""BrainCL recall at scale on this machine: decode throughput by batch size, cached (one batched
decode per phase, uint8) against per-item decoding in the DataLoader, and the share of a sleep
epoch that goes to decoding.

One task's codec is trained with braincl's mnist5k settings (N=16, M=8, depth 2, 200 steps), every
training image of MNIST 5k is encoded into a cue, and then:
- recall throughput (images/s, median of 3) of ``CueStore.recall`` at several batch sizes;
- per-item decoding (``cache_recall: false``) through the engine's loader, 0 workers;
- one sleep epoch as braincl runs it on the default grid (sleep_epoch_size draws from the recalled
  samples, batch 64, width-8 ResNet-18 with the stride-2 stem): time to decode the phase's cues
  once, against time to train the epoch.

    python benchmarks/recall_throughput.py --out results/benchmarks/recall_throughput
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, reps: int = 3) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("results/benchmarks/recall_throughput"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cues", type=int, default=2800, help="cues decoded per sleep phase (300KB grid run: ~2000 long-term + 800 working)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from braincl import config
    from braincl.codec import build_codec, encode, freeze, train_codec
    from braincl.data.base import ImageDataset
    from braincl.engine import Engine
    from braincl.memory.cues import CueStore
    from braincl.methods.braincl import RecallDataset
    from braincl.models.net import build_model
    from braincl.runner import build_data

    cfg = config.load("config/experiments/mnist5k_grid.yaml", ["method.name=braincl", "memory.budget=300KB",
                                                               "train.progress=false"])
    p = cfg["method"]["params"]
    splits = build_data(cfg)
    images, labels = splits.train.read_many(np.arange(len(splits.train))), splits.train.targets
    first = np.flatnonzero(np.isin(labels, [0, 1]))
    codec = build_codec(1, p["N"], p["M"], depth=p["depth"])
    train_codec(codec, images[first], lmbda=p["lambda"], steps=p["codec_steps"], batch_size=p["codec_batch_size"],
                lr=p["codec_lr"], aux_lr=p["codec_aux_lr"], progress=False, seed=0)
    completion = freeze(codec, (28, 28), p["decoder_precision"])
    t0 = time.perf_counter()
    strings, shape = encode(codec, images, 512)
    encode_s = time.perf_counter() - t0
    store = CueStore()
    store.add(0, strings, labels, shape)
    n = len(store)

    rows = {"encode_img_per_s": n / encode_s}
    for bs in (1, 16, 64, 512, 4096):
        count = min(n, 512) if bs == 1 else n
        sub = CueStore()
        sub.extend(store, np.arange(count))
        rows[f"recall_cached_batch{bs}_img_per_s"] = count / timed(lambda: sub.recall([completion], bs))

    engine = Engine(cfg["train"], torch.device("cpu"))
    per_item = RecallDataset(store, [completion], lambda x: x)
    loader = engine.loader(per_item, shuffle=True)
    rows["recall_per_item_loader_img_per_s"] = n / timed(lambda: [None for _ in loader], reps=1)

    # One sleep phase: decode its cues once (cache), then one epoch of training on them.
    phase = CueStore()
    phase.extend(store, np.arange(min(args.cues, n)))
    t0 = time.perf_counter()
    decoded, phase_labels = phase.recall([completion], p["recall_batch_size"])
    decode_s = time.perf_counter() - t0
    model = build_model(cfg, 1, 28)
    model.head.grow(10)
    data = ImageDataset(lambda i: decoded[i], np.asarray(phase_labels, dtype=np.int64) % 10)
    draws = p["sleep_epoch_size"]
    sampler_data = torch.utils.data.Subset(data, torch.randint(len(data), (draws,)).tolist())
    t0 = time.perf_counter()
    engine.fit(model, engine.loader(sampler_data, shuffle=True, drop_last=True), epochs=1)
    epoch_s = time.perf_counter() - t0
    epochs = p["sleep_epochs"]
    rows.update({
        "sleep_phase_cues": len(phase), "sleep_decode_s": decode_s, "sleep_epoch_train_s": epoch_s,
        "sleep_epochs": epochs,
        "decode_share_of_sleep_phase": decode_s / (decode_s + epochs * epoch_s),
        "decode_share_if_decoded_every_epoch": decode_s / (decode_s + epoch_s),
    })
    record = {
        "command": "python benchmarks/recall_throughput.py " + " ".join(argv or sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} CPU, {args.threads} torch thread(s), {platform.platform()}; no GPU",
        "codec": {k: p[k] for k in ("N", "M", "depth", "codec_steps", "decoder_precision")},
        "cues": n, "mean_cue_bytes": float(np.mean([len(s) for s in strings])),
        "results": {k: round(v, 4) if isinstance(v, float) else v for k, v in rows.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    r = record["results"]
    md = [
        "# BrainCL recall throughput (MNIST 5k, CPU)", "",
        f"Command: `{record['command']}`", "",
        f"Machine: {record['machine']}. Date: {record['date']}.", "",
        f"Codec: {record['codec']}; {n} cues, {record['mean_cue_bytes']:.1f} B each on average; encode "
        f"{r['encode_img_per_s']:.0f} img/s.", "",
        "| recall | images/s |", "|---|---:|",
        *[f"| cached, batch {bs} | {r[f'recall_cached_batch{bs}_img_per_s']:.0f} |" for bs in (1, 16, 64, 512, 4096)],
        f"| per item in the loader (`cache_recall: false`), 0 workers | {r['recall_per_item_loader_img_per_s']:.0f} |", "",
        f"Sleep phase as on the default grid: {r['sleep_phase_cues']} cues decoded once in {r['sleep_decode_s']:.2f} s; "
        f"one epoch of {p['sleep_epoch_size']} draws trains in {r['sleep_epoch_train_s']:.2f} s; with "
        f"{epochs} epochs, decoding is **{100 * r['decode_share_of_sleep_phase']:.1f}%** of the phase "
        f"({100 * r['decode_share_if_decoded_every_epoch']:.1f}% if the cues were decoded again every epoch).", "",
    ]
    args.out.with_suffix(".md").write_text("\n".join(md))
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
