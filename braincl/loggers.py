"""Experiment loggers: what a run does while it does it, beside the record it writes at the end.

The engine reports every optimizer step (loss, learning rate, phase; sent once per epoch, so that
logging adds no device sync per step) and the runner every finished task (the accuracy-matrix row,
the memory charged, the task's compute). ``RunLog`` fans these out to the backends:

- ``train.log`` (always): a text log of the run (start, each epoch, each task, the end or the error);
- ``steps.csv`` and ``tasks.csv`` (always): one row per optimizer step, one row per task;
- TensorBoard event files in ``tensorboard/`` (``log.tensorboard: true``);
- Weights & Biases (``log.wandb: {project: NAME}``; offline by default, optional extra ``wandb``).

The backends follow the field's tools: Avalanche's ``avalanche/logging/`` (TextLogger, CSVLogger,
TensorboardLogger, WandBLogger: one logger interface, several backends) and Mammoth's
``utils/loggers.py`` (CSV beside the run, W&B optional). Loggers only read numbers the run already
computed, so they change no metric (tested). A resumed run continues the step count of its
checkpoint: CSV rows and TensorBoard events of the unfinished task are dropped, so the logs equal
those of an uninterrupted run."""

from __future__ import annotations

import csv
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

TEXT_LOG = "train.log"
STEPS_CSV = "steps.csv"
TASKS_CSV = "tasks.csv"
TENSORBOARD_DIR = "tensorboard"
STEP_COLUMNS = ["task", "phase", "epoch", "step", "loss", "lr"]
WANDB_MISSING = ("log.wandb is set but the wandb package is not installed; install it with "
                 "pip install 'braincl-bench[wandb]', or remove log.wandb from the config")
TENSORBOARD_MISSING = ("log.tensorboard is true but the tensorboard package is not installed; install it with "
                       "pip install 'braincl-bench[tensorboard]', or set log.tensorboard: false")


@dataclass
class TaskResult:
    """What the runner knows after task ``task`` (0-based): ``rows`` are the TAg rows of the accuracy
    matrix so far (row t holds tasks 0..t), ``counts`` the test samples of the seen tasks, ``memory``
    the breakdown's ``as_dict``, ``phases`` the task's compute (``braincl.compute``)."""

    task: int
    num_tasks: int
    step: int
    rows: list[list[float]]
    counts: list[int]
    memory: dict
    phases: dict
    train_s: float
    eval_s: float

    @property
    def accuracy(self) -> list[float]:
        return list(self.rows[-1])

    @property
    def average(self) -> float:
        """A_t over all seen test samples (``braincl.metrics``, the record's sample weighting)."""
        from .evaluate import square
        from .metrics import accuracy_per_step

        n = len(self.rows)
        R = [[float("nan") if v is None else v for v in row] for row in square(self.rows, n)]
        return float(accuracy_per_step(R, self.counts[:n], "sample")[-1])

    @property
    def compute(self) -> dict:
        """The task's summed training and encoding compute (``braincl.compute.summarize``)."""
        from .compute import summarize

        return summarize([{"task": self.task, "phases": self.phases}])


class Logger:
    """One backend. Every hook may be left as is; values are plain Python numbers. ``steps`` are
    the run's global optimizer-step numbers (1-based, counted across tasks and phases)."""

    def log_steps(self, task: int, phase: str, epoch: int, steps: list[int], losses: list[float],
                  lrs: list[float]) -> None:
        pass

    def log_task(self, result: TaskResult) -> None:
        pass

    def message(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _writes_to(stream, path: Path) -> bool:
    """Whether ``stream`` is the file ``path`` (the workflow sends a job's output to train.log)."""
    try:
        return path.exists() and os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (AttributeError, OSError, ValueError):
        return False


class TextLog(Logger):
    """``train.log``: one time-stamped line per event, appended (a resumed run continues the file).
    Lines the console also shows (task results, resume) are echoed through ``echo``, unless the
    console already is this file."""

    def __init__(self, path: Path, echo=print):
        self.path = path
        self.fh = open(path, "a", encoding="utf-8")
        self.echo = None if _writes_to(sys.stdout, path) else echo

    def message(self, text: str, echo: bool = False) -> None:
        stamp = datetime.now().astimezone().isoformat(timespec="seconds")
        self.fh.write(f"{stamp} {text}\n")
        self.fh.flush()
        if echo and self.echo is not None:
            self.echo(text)

    def log_steps(self, task, phase, epoch, steps, losses, lrs) -> None:
        mean, n = sum(losses) / len(losses), len(steps)
        self.message(f"task {task + 1} {phase} epoch {epoch}: {n} step{'s' * (n != 1)} (to step {steps[-1]}), "
                     f"mean loss {mean:.4f}, last loss {losses[-1]:.4f}, lr {lrs[0]:.3g} -> {lrs[-1]:.3g}")

    def log_task(self, r: TaskResult) -> None:
        training = r.compute["training"]
        self.message(f"task {r.task + 1}/{r.num_tasks}: TAg accuracy on seen tasks "
                     + " ".join(f"{a:.3f}" for a in r.accuracy) + f" | memory {r.memory['charged_bytes']} B", echo=True)
        self.message(f"task {r.task + 1}/{r.num_tasks}: seen-task accuracy {r.average:.4f}, training "
                     f"{training['steps']} steps, {training['flops']:.3e} FLOPs, {training['backbone_backward']} "
                     f"backbone updates; train {r.train_s:.1f} s, eval {r.eval_s:.1f} s")

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.close()


def _fmt(v) -> str:
    return "" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)


class CSVLog(Logger):
    """``steps.csv`` (task, phase, epoch, step, loss, lr per optimizer step) and ``tasks.csv`` (per task:
    the accuracy-matrix row, A_t, memory and compute). Tasks are 1-based, as in train.log and the
    analysis. ``keep_tasks``: on resume, the rows of the finished tasks to keep (the others are
    rewritten by the resumed run); None starts both files afresh."""

    def __init__(self, out_dir: Path, num_tasks: int, keep_tasks: int | None = None):
        self.task_columns = (["task", "step", "avg_acc"] + [f"acc_task{j + 1}" for j in range(num_tasks)]
                             + ["charged_bytes", "total_bytes", "training_steps", "training_flops",
                                "backbone_updates", "encoding_flops", "train_s", "eval_s"])
        self.steps = self._open(out_dir / STEPS_CSV, STEP_COLUMNS, keep_tasks)
        self.tasks = self._open(out_dir / TASKS_CSV, self.task_columns, keep_tasks)

    @staticmethod
    def _open(path: Path, columns: list[str], keep_tasks: int | None):
        kept = []
        if keep_tasks is not None and path.exists():
            with open(path, newline="", encoding="utf-8") as fh:
                reader = csv.reader(fh)
                if next(reader, None) == columns:
                    kept = [row for row in reader if row and row[0].isdigit() and int(row[0]) <= keep_tasks]
        fh = open(path, "w", newline="", encoding="utf-8")
        writer = csv.writer(fh)
        writer.writerow(columns)
        writer.writerows(kept)
        fh.flush()
        return fh, writer

    def log_steps(self, task, phase, epoch, steps, losses, lrs) -> None:
        fh, writer = self.steps
        writer.writerows([task + 1, phase, epoch, s, _fmt(loss), _fmt(lr)] for s, loss, lr in zip(steps, losses, lrs))
        fh.flush()  # one flush per epoch: the curve can be watched while the run goes on

    def log_task(self, r: TaskResult) -> None:
        fh, writer = self.tasks
        training, encoding = r.compute["training"], r.compute["encoding"]
        acc = r.accuracy + [None] * (r.num_tasks - len(r.accuracy))
        writer.writerow([r.task + 1, r.step, _fmt(r.average), *map(_fmt, acc), r.memory["charged_bytes"],
                         r.memory["total_bytes"], training["steps"], training["flops"], training["backbone_backward"],
                         encoding["flops"], _fmt(r.train_s), _fmt(r.eval_s)])
        fh.flush()

    def close(self) -> None:
        for fh, _ in (self.steps, self.tasks):
            if not fh.closed:
                fh.close()


def _scalars(r: TaskResult) -> dict[str, float]:
    """The per-task numbers under the names TensorBoard and W&B show them."""
    out = {f"accuracy/task_{j + 1}": a for j, a in enumerate(r.accuracy)}
    out["accuracy/seen_tasks"] = r.average
    out["memory/charged_bytes"] = r.memory["charged_bytes"]
    out["memory/total_bytes"] = r.memory["total_bytes"]
    out["compute/training_flops"] = r.compute["training"]["flops"]
    out["compute/backbone_updates"] = r.compute["training"]["backbone_backward"]
    return out


class TensorBoardLog(Logger):
    """Event files in ``tensorboard/`` through ``torch.utils.tensorboard``: ``loss/<phase>`` and
    ``lr/<phase>`` per step, ``accuracy/task_<j>``, ``accuracy/seen_tasks``, ``memory/*`` and
    ``compute/*`` per task, all against the global step. ``purge_step`` hides events at or after it
    from earlier event files in the folder (a resumed run's unfinished task; 0: a fresh run)."""

    def __init__(self, out_dir: Path, purge_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=str(out_dir / TENSORBOARD_DIR), purge_step=purge_step)

    def log_steps(self, task, phase, epoch, steps, losses, lrs) -> None:
        for s, loss, lr in zip(steps, losses, lrs):
            self.writer.add_scalar(f"loss/{phase}", loss, s)
            self.writer.add_scalar(f"lr/{phase}", lr, s)
        self.writer.flush()

    def log_task(self, r: TaskResult) -> None:
        for name, value in _scalars(r).items():
            self.writer.add_scalar(name, value, r.step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLog(Logger):
    """Weights & Biases, offline unless ``log.wandb.mode`` says otherwise (a cluster node usually has
    no network; ``wandb sync OUT/wandb/offline-run-*`` uploads later). Same names as TensorBoard."""

    def __init__(self, wandb_cfg: dict, cfg: dict, out_dir: Path, name: str):
        import wandb

        self.run = wandb.init(project=wandb_cfg["project"], entity=wandb_cfg.get("entity"),
                              mode=wandb_cfg.get("mode") or "offline", name=wandb_cfg.get("name") or name,
                              tags=list(wandb_cfg.get("tags") or []), dir=str(out_dir), config=cfg)

    def log_steps(self, task, phase, epoch, steps, losses, lrs) -> None:
        for s, loss, lr in zip(steps, losses, lrs):
            self.run.log({f"loss/{phase}": loss, f"lr/{phase}": lr}, step=s)

    def log_task(self, r: TaskResult) -> None:
        self.run.log({**_scalars(r), "task": r.task + 1}, step=r.step)

    def close(self) -> None:
        self.run.finish()


def check_config(cfg: dict) -> None:
    """Refuse, before any work, a logger the config asks for but this installation lacks."""
    from importlib.util import find_spec

    from .config import ConfigError

    log = cfg.get("log") or {}
    if log.get("wandb") and find_spec("wandb") is None:
        raise ConfigError(WANDB_MISSING)
    if log.get("tensorboard") and find_spec("tensorboard") is None:
        raise ConfigError(TENSORBOARD_MISSING)


def run_name(cfg: dict) -> str:
    budget = cfg["memory"].get("budget")
    return "-".join(str(p) for p in (cfg["method"]["name"], cfg["dataset"].get("label") or cfg["dataset"]["name"],
                                     "none" if budget is None else budget, f"seed{cfg['seed']}"))


class RunLog:
    """The run's loggers, as the engine and the runner see them. It opens no file until ``open``
    (a run refused before training leaves nothing behind); until then, and with no backends, the
    engine skips collecting step values."""

    def __init__(self, echo=print):
        self.echo = echo
        self.backends: list[Logger] = []
        self.text: TextLog | None = None
        self.step = 0  # global optimizer steps so far

    @property
    def active(self) -> bool:
        return bool(self.backends)

    def open(self, cfg: dict, out_dir: Path, num_tasks: int, *, resumed_at: int | None = None, step: int = 0) -> None:
        """Open every configured backend in ``out_dir``. ``resumed_at``: the first unfinished task of
        a resumed run (0-based), whose step count ``step`` the logs continue from."""
        check_config(cfg)
        log = cfg.get("log") or {}
        self.step = step if resumed_at is not None else 0
        self.text = TextLog(out_dir / TEXT_LOG, self.echo)
        self.backends = [self.text, CSVLog(out_dir, num_tasks, keep_tasks=resumed_at)]
        if log.get("tensorboard"):
            self.backends.append(TensorBoardLog(out_dir, purge_step=self.step + 1 if resumed_at is not None else 0))
        if log.get("wandb"):
            self.backends.append(WandbLog(log["wandb"], cfg, out_dir, run_name(cfg)))
        names = ["train.log", "steps.csv", "tasks.csv"] + (["tensorboard/"] if log.get("tensorboard") else []) + (
            [f"wandb ({log['wandb'].get('mode') or 'offline'})"] if log.get("wandb") else [])
        self.text.message(f"run {run_name(cfg)}: {num_tasks} tasks, out {out_dir}; logging to {', '.join(names)}")

    def steps(self, task: int, phase: str, epoch: int, losses: list[float], lrs: list[float]) -> None:
        steps = list(range(self.step + 1, self.step + 1 + len(losses)))
        self.step += len(losses)
        if steps:
            for b in self.backends:
                b.log_steps(task, phase, epoch, steps, losses, lrs)

    def task_done(self, result: TaskResult) -> None:
        for b in self.backends:
            b.log_task(result)

    def message(self, text: str, echo: bool = False) -> None:
        """A line in train.log (and on the console with ``echo``)."""
        if self.text is not None:
            self.text.message(text, echo=echo)
        elif echo:
            self.echo(text)

    def stopped(self, err: BaseException) -> None:
        what = "interrupted" if isinstance(err, KeyboardInterrupt) else f"failed: {type(err).__name__}: {err}"
        self.message(f"run {what}".splitlines()[0])

    def close(self) -> None:
        backends, self.backends = self.backends, []
        for b in reversed(backends):  # train.log last: it records the others' closing
            b.close()
        self.text = None
