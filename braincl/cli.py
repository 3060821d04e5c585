"""``braincl``: run one experiment, list what is registered, or validate a config.

Only argparse and PyYAML are imported up front, so ``braincl --help`` answers at once."""

from __future__ import annotations

import sys


def _interrupted_early(kind, value, tb, _default=sys.excepthook):
    # Ctrl-C before main() runs (while this module's imports load) ends in one line, not a traceback
    if issubclass(kind, KeyboardInterrupt):
        print("braincl: interrupted (Ctrl-C) before the command started; nothing was written", file=sys.stderr)
    else:
        _default(kind, value, tb)


sys.excepthook = _interrupted_early

import argparse  # noqa: E402  (after the hook: Ctrl-C may come during any import)
import warnings  # noqa: E402

EPILOG = """examples:
  braincl run config/experiments/mnist5k_er.yaml --out results/scratch/er
  braincl run config/experiments/mnist5k_er.yaml --set seed=2 --set memory.budget=200KB --out /tmp/er2
  braincl validate config/experiments/mnist5k_er.yaml --set method.name=icarl
  braincl compare /tmp/er /tmp/er2 --plot /tmp/er_vs_er2.png
  braincl list
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="braincl", description="Class-incremental learning at equal memory bytes: BrainCL and baselines.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run one experiment and write OUT/metrics.json",
                         description="Run one experiment. Rerunning the same command after an interruption "
                                     "resumes at the first unfinished task.")
    run.add_argument("config", help="experiment YAML (layered over the defaults of its data set and method)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a config value, e.g. --set train.epochs=3 (repeatable)")
    run.add_argument("--out", required=True, help="output folder for metrics.json (and the checkpoint while running)")
    run.add_argument("--no-resume", action="store_true", help="ignore an existing checkpoint and start afresh")
    run.add_argument("--keep-checkpoint", action="store_true", help="keep checkpoint.pt after the run finishes")
    run.add_argument("--quiet", action="store_true", help="no progress bars")

    val = sub.add_parser("validate", help="validate a config and print the resolved version",
                         description="Make every check that run makes before training (it builds the data set, "
                                     "model and method, and checks the budget), then print the resolved config.")
    val.add_argument("config")
    val.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    sub.add_parser("list", help="list registered methods, data sets, backbones and protocols")

    cmp = sub.add_parser("compare", help="finished runs side by side: accuracy, forgetting, memory, compute, config",
                         description="Print the average and last accuracy, forgetting, memory and compute of finished "
                                     "runs side by side, and the config keys that differ between them.")
    cmp.add_argument("runs", nargs="+", metavar="RUN",
                     help="a run folder (the --out of braincl run), its metrics.json, or a folder of runs")
    cmp.add_argument("--plot", metavar="FILE", help="also draw the accuracy after each task of every run (.png, .pdf, .svg)")
    cmp.add_argument("--weighting", choices=["sample", "task"], default="sample",
                     help="accuracy over all seen test samples (default) or mean over seen tasks")
    return p


def _fail(message: str) -> int:
    if "Original Traceback" in message:  # re-raised from a DataLoader worker: keep the error's own line
        message = message.strip().splitlines()[-1].split(": ", 1)[-1]
    print(f"braincl: error: {message}", file=sys.stderr)
    return 2


def _quiet_known_warnings() -> None:
    # compressai imports torch_geometric, which calls torch.jit.script at import time; the
    # deprecation is theirs to act on and says nothing about a run
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)


def main(argv: list[str] | None = None) -> int:
    """The entry point: ``_main``, with Ctrl-C at any moment ending in one line and exit status 130
    (a run under way says how to resume; before that, nothing has been written)."""
    from .interrupts import held_during_imports

    try:
        with held_during_imports():
            return _main(argv)
    except KeyboardInterrupt:
        print("braincl: interrupted (Ctrl-C); nothing was written", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    _quiet_known_warnings()
    args = _parser().parse_args(argv)
    if args.command is None:
        _parser().print_help()
        return 0
    if args.command == "list":
        from .protocols import PROTOCOLS, _load
        from .registry import BACKBONES, DATASETS, METHODS

        _load()
        for title, names in (("methods", METHODS.names()), ("data sets", DATASETS.names()),
                             ("backbones", BACKBONES.names()), ("protocols", sorted(PROTOCOLS))):
            print(f"{title}: {', '.join(names)}")
        return 0
    if args.command == "compare":
        from .compare import CompareError, compare

        try:
            print(compare(args.runs, plot=args.plot, weighting=args.weighting))
        except CompareError as err:
            return _fail(str(err))
        return 0

    from .config import ConfigError, load

    try:
        cfg = load(args.config, args.overrides + (["train.progress=false"] if getattr(args, "quiet", False) else []))
    except ConfigError as err:
        return _fail(str(err))

    from .checkpoint import CheckpointError
    from .data.base import DataError
    from .memory import BudgetExceeded
    from .memory.cues import CueCorrupted
    from .runner import preflight, run_experiment

    refusals = (ConfigError, DataError, BudgetExceeded, FloatingPointError, CheckpointError, CueCorrupted)
    if args.command == "validate":
        import yaml

        try:
            cfg = preflight(cfg).cfg  # with the values derived from the data (auto defaults, sized codec)
        except refusals as err:
            return _fail(str(err))
        print(yaml.safe_dump(cfg, sort_keys=False), end="")
        return 0

    try:
        record = run_experiment(cfg, args.out, resume=not args.no_resume, keep_checkpoint=args.keep_checkpoint)
    except refusals as err:
        return _fail(str(err))
    except KeyboardInterrupt:
        print("braincl: interrupted; rerun the same command to resume from the last finished task", file=sys.stderr)
        return 130
    s = record["summary"]
    print(f"{cfg['method']['name']} on {cfg['dataset']['name']}: average accuracy {100 * s['avg_acc_sample']:.2f}%, "
          f"last accuracy {100 * s['last_acc_sample']:.2f}%, forgetting {100 * s['forgetting']:.2f} "
          f"-> {args.out}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
