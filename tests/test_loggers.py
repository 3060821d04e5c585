"""Experiment loggers: train.log and the CSV logs of every run, TensorBoard event files that
tensorboard's own reader loads, the W&B adapter (against a stand-in module: wandb is an optional
extra), a resumed run's logs equal to an uninterrupted run's, and no metric changed by logging."""

from __future__ import annotations

import csv
import importlib.machinery
import json
import sys
import types

import pytest

from braincl import config
from braincl.loggers import STEP_COLUMNS, CSVLog, RunLog, TextLog
from braincl.runner import run_experiment
from tests.conftest import tiny_overrides

pytestmark = pytest.mark.slow

LOGGED = {"log.tensorboard": True, "log.wandb.project": "braincl-tests"}


class FakeWandb(types.ModuleType):
    """Records what the adapter sends: ``init`` keywords, ``log`` calls, ``finish``."""

    def __init__(self):
        super().__init__("wandb")
        self.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # find_spec sees it as installed
        self.inits, self.logged, self.finished = [], [], 0

    def init(self, **kw):
        self.inits.append(kw)
        fake = self

        class Run:
            def log(self, data, step=None):
                fake.logged.append((step, dict(data)))

            def finish(self):
                fake.finished += 1

        return Run()


def _cfg(method="er", **extra):
    return config.load(None, tiny_overrides(method, "60KB", **{"train.epochs": 2, **extra}))


def _comparable(record: dict) -> dict:
    """A record without what differs between any two runs (clock times, wall times, the logger settings)."""
    out = {k: record[k] for k in ("accuracy", "summary", "memory", "analysis", "method_info", "protocols")}
    out["fingerprint"] = record["run"]["config_fingerprint"]
    out["compute"] = [{name: {k: v for k, v in phase.items() if k != "wall_s"} for name, phase in t["phases"].items()}
                      for t in record["compute"]["per_task"]]
    return json.loads(json.dumps(out))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One ER run with every logger on (W&B through the stand-in), one with none at all."""
    root = tmp_path_factory.mktemp("loggers")
    fake = FakeWandb()
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "wandb", fake)
        logged = run_experiment(_cfg(**LOGGED), root / "logged", log=lambda *_: None)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RunLog, "open", lambda self, *a, **kw: None)  # no backend: the engine collects nothing
        plain = run_experiment(_cfg(), root / "plain", log=lambda *_: None)
    return {"root": root, "logged": logged, "plain": plain, "wandb": fake}


def _csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _total_steps(record) -> int:
    return sum(p["steps"] for t in record["compute"]["per_task"] for p in t["phases"].values())


def test_logging_changes_no_metric(runs):
    assert not (runs["root"] / "plain" / "train.log").exists()  # the plain run really had no logger
    assert runs["logged"]["config"]["log"] == {"tensorboard": True, "wandb": {"project": "braincl-tests"}}
    assert _comparable(runs["logged"]) == _comparable(runs["plain"])


def test_every_run_writes_train_log_and_csv(runs):
    out, record = runs["root"] / "logged", runs["logged"]
    text = (out / "train.log").read_text()
    assert "task 2 train epoch 2:" in text and "task 2/2: TAg accuracy on seen tasks" in text
    assert "finished: average accuracy" in text
    steps = _csv(out / "steps.csv")
    assert list(steps[0]) == STEP_COLUMNS
    assert [int(r["step"]) for r in steps] == list(range(1, _total_steps(record) + 1))
    assert {r["phase"] for r in steps} == {"train"} and {r["task"] for r in steps} == {"1", "2"}
    tasks = _csv(out / "tasks.csv")
    R, summary = record["accuracy"]["tag"], record["summary"]
    for t, row in enumerate(tasks):
        assert [float(row[f"acc_task{j + 1}"]) for j in range(t + 1)] == pytest.approx(R[t][: t + 1], abs=1e-6)
        assert float(row["avg_acc"]) == pytest.approx(summary["acc_per_step_sample"][t], abs=1e-6)
        assert int(row["charged_bytes"]) == record["memory"]["per_task"][t]["charged_bytes"]
        assert int(row["training_flops"]) == record["compute"]["per_task"][t]["phases"]["train"]["flops"]
    assert tasks[0]["acc_task2"] == ""


def test_tensorboard_events_load_with_tensorboards_reader(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, record = runs["root"] / "logged", runs["logged"]
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    assert {"loss/train", "lr/train", "accuracy/task_1", "accuracy/task_2", "accuracy/seen_tasks",
            "memory/charged_bytes", "compute/training_flops"} <= scalars
    loss = acc.Scalars("loss/train")
    assert [e.step for e in loss] == list(range(1, _total_steps(record) + 1))
    csv_loss = [float(r["loss"]) for r in _csv(out / "steps.csv")]
    assert [e.value for e in loss] == pytest.approx(csv_loss, rel=1e-5)
    R = record["accuracy"]["tag"]
    assert [e.value for e in acc.Scalars("accuracy/task_1")] == pytest.approx([R[0][0], R[1][0]], abs=1e-6)
    assert [e.value for e in acc.Scalars("accuracy/task_2")] == pytest.approx([R[1][1]], abs=1e-6)
    assert acc.Scalars("accuracy/task_2")[0].step == _total_steps(record)


def test_wandb_adapter_offline_by_default(runs):
    fake, out = runs["wandb"], runs["root"] / "logged"
    (init,) = fake.inits
    assert init["project"] == "braincl-tests" and init["mode"] == "offline" and init["dir"] == str(out)
    assert init["config"]["method"]["name"] == "er" and init["name"] == "er-mnist5k-60KB-seed0"
    steps = [s for s, _ in fake.logged]
    assert steps == sorted(steps)  # W&B drops a step that goes back
    losses = [d["loss/train"] for _, d in fake.logged if "loss/train" in d]
    assert len(losses) == _total_steps(runs["logged"])
    last = fake.logged[-1][1]
    assert last["task"] == 2 and last["accuracy/task_2"] == pytest.approx(runs["logged"]["accuracy"]["tag"][1][1])
    assert fake.finished == 1


def test_missing_wandb_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    from braincl.cli import main

    monkeypatch.setitem(sys.modules, "wandb", None)  # not importable, whether or not it is installed
    exp = tmp_path / "exp.yaml"
    exp.write_text("{}\n")
    sets = sum((["--set", s] for s in tiny_overrides("finetune", None, **{"log.wandb.project": "p"})), [])
    out = tmp_path / "out"
    for command in (["run", str(exp), "--out", str(out)], ["validate", str(exp)]):
        assert main([*command, *sets]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "log.wandb" in err[0] and "pip install 'braincl-bench[wandb]'" in err[0], err
    assert not out.exists()


def test_a_resumed_run_logs_like_an_uninterrupted_one(runs, tmp_path, monkeypatch):
    """Killed after task 2's training: steps.csv, tasks.csv and TensorBoard equal the uninterrupted
    run's (the unfinished task's rows are dropped, its events purged), and train.log tells both halves."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from braincl.engine import Engine

    class Killed(RuntimeError):
        pass

    fit = Engine.fit

    def fit_then_die(self, *a, **kw):
        stats = fit(self, *a, **kw)
        if self.compute.task == 1:
            raise Killed("killed after task 2's training")
        return stats

    cfg = _cfg(**{"log.tensorboard": True})
    out = tmp_path / "resumed"
    monkeypatch.setattr(Engine, "fit", fit_then_die)
    with pytest.raises(Killed):
        run_experiment(cfg, out, log=lambda *_: None)
    monkeypatch.setattr(Engine, "fit", fit)
    assert len(_csv(out / "steps.csv")) == _total_steps(runs["logged"])  # task 2's steps were logged ...
    resumed = run_experiment(cfg, out, log=lambda *_: None)
    assert resumed["run"]["resumed_from_task"] == 1

    ref = runs["root"] / "logged"
    assert (out / "steps.csv").read_text() == (ref / "steps.csv").read_text()  # ... and are written once
    untimed = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]  # noqa: E731
    assert untimed(_csv(out / "tasks.csv")) == untimed(_csv(ref / "tasks.csv"))
    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    assert [e.step for e in acc.Scalars("loss/train")] == list(range(1, _total_steps(resumed) + 1))
    assert len(acc.Scalars("accuracy/task_2")) == 1
    text = (out / "train.log").read_text()
    assert "run failed: Killed: killed after task 2's training" in text and "resuming at task 2/2" in text


def test_csv_keeps_only_finished_tasks_on_resume(tmp_path):
    rows = [[1, "train", 1, 1, 0.5, 0.1], [2, "train", 1, 2, 0.4, 0.1], [2, "sleep", 1, 3, 0.3, 0.1]]
    with open(tmp_path / "steps.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([STEP_COLUMNS, *rows])
    log = CSVLog(tmp_path, num_tasks=2, keep_tasks=1)
    log.close()
    assert [r["step"] for r in _csv(tmp_path / "steps.csv")] == ["1"]
    CSVLog(tmp_path, num_tasks=2, keep_tasks=None).close()  # a fresh run starts the file afresh
    assert _csv(tmp_path / "steps.csv") == []


def test_train_log_is_not_echoed_into_itself(tmp_path, monkeypatch):
    """The workflow sends a job's output to train.log: the echo would write every line twice."""
    path = tmp_path / "train.log"
    echoed = []
    with open(path, "a") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        log = TextLog(path, echo=echoed.append)
        log.message("task 1/2: done", echo=True)
        log.close()
    assert echoed == [] and path.read_text().count("task 1/2: done") == 1
    monkeypatch.undo()
    log = TextLog(tmp_path / "other.log", echo=echoed.append)
    log.message("task 1/2: done", echo=True)
    log.close()
    assert echoed == ["task 1/2: done"]
