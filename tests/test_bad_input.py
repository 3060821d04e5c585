"""The catalogue of user mistakes. Each one ends in a non-zero exit and one ``braincl: error:``
line that names the offending key or file, with no traceback and no file or folder left behind;
``validate`` refuses exactly what ``run`` refuses before training."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from braincl import config
from braincl.cli import main
from tests.conftest import tiny_overrides

SMALL_BRAINCL = {"method.params.N": 8, "method.params.M": 8, "method.params.codec_steps": 6,
                 "method.params.wake_epochs": 1, "method.params.sleep_epochs": 1}


def _sets(items):
    return sum((["--set", s] for s in items), [])


def _tiny(method="er", budget="60KB", **extra):
    return _sets(tiny_overrides(method, budget, **extra))


# (case id, experiment file content or None for a valid one, extra arguments, words the message must hold)
CATALOGUE = [
    # the cases
    ("epochs_zero", None, _tiny(**{"train.epochs": 0}), ["train.epochs", "minimum of 1"]),
    ("increment_too_large", None, _tiny(**{"scenario.increment": 20}), ["scenario.increment=20", "10 classes"]),
    ("unknown_dataset_param", None, _tiny(**{"dataset.params.train_per_clas": 3}),
     ["dataset.params", "train_per_clas", "train_per_class"]),
    ("empty_file", "", _tiny(), ["{cfg}", "empty"]),
    ("comments_only_file", "# nothing here\n", _tiny(), ["{cfg}", "empty"]),
    ("device_cuda_without_cuda", None, _tiny(device="cuda"), ["device", "device: auto", "device: cpu"]),
    ("unknown_backbone_param", None, _tiny(**{"model.params.widht": 4}), ["model.params", "widht", "width"]),
    ("method_param_wrong_type", None, _tiny("braincl", "30KB", **{"method.params.lambda": "high"}),
     ["method.params.lambda", "'high'", "number"]),
    ("scalar_for_a_section", None, _tiny() + ["--set", "method=er"], ["method=er", "method.name=er"]),
    ("negative_budget", None, _tiny(budget="-10KB"), ["memory.budget", "negative"]),
    ("unreadable_budget", None, _tiny(budget="abc"), ["memory.budget", "not a byte size", "500KB"]),
    ("repeated_class", None, _tiny(**{"scenario.tasks": "[[0,1],[1,2]]"}), ["scenario.tasks", "class 1"]),
    ("method_param_enum", None, _tiny("braincl", "30KB", **{"method.params.decoder_precision": "fp8"}),
     ["method.params.decoder_precision", "fp8", "fp16"]),
    ("method_param_range", None, _tiny("ewc", None, **{"method.params.gamma": 2}), ["method.params.gamma", "2"]),
    ("bool_for_an_int", None, _tiny("braincl", "30KB", **{"method.params.N": "true"}), ["method.params.N", "integer"]),
    ("nonpositive_lr", None, _tiny(**{"train.optimizer.lr": 0}), ["train.optimizer.lr"]),
    ("bad_stem_value", None, _tiny(**{"model.params.stem": "big"}), ["model.params.stem", "big"]),
    # cases handled before, kept honest here
    ("missing_file", "MISSING", _tiny(), ["{cfg}", "not found"]),
    ("malformed_yaml", "method: {name: er\n", _tiny(), ["{cfg}", "not valid YAML"]),
    ("list_at_top_level", "- method\n", _tiny(), ["{cfg}", "mapping"]),
    ("unknown_method", None, _tiny(**{"method.name": "nosuch"}), ["method.name", "nosuch", "er"]),
    ("unknown_dataset", None, _tiny(**{"dataset.name": "cifar1000"}), ["dataset.name", "cifar1000", "mnist5k"]),
    ("unknown_backbone", None, _tiny(**{"model.backbone": "vgg99"}), ["model.backbone", "vgg99"]),
    ("unknown_top_level_key", None, _tiny(**{"train.epochz": 3}), ["epochz", "epochs"]),
    ("unknown_method_param", None, _tiny(**{"method.params.temperature": 2}), ["method.params", "temperature"]),
    ("unknown_byte_unit", None, _tiny(budget="12parsecs"), ["memory.budget", "parsecs"]),
    ("budget_required", None, _sets([s for s in tiny_overrides("er", None)]), ["memory.budget", "required"]),
    ("er_budget_too_small", None, _tiny(budget="1KB"), ["exemplar", "memory.budget"]),
    ("braincl_budget_too_small", None, _tiny("braincl", "4KB", **SMALL_BRAINCL), ["memory.budget", "at least"]),
    ("bad_override_syntax", None, _tiny() + ["--set", "train.epochs"], ["--set", "key=value"]),
    ("bad_transform", None, _tiny() + ["--set", "dataset.transforms.train=[{name: NoSuchCrop}]"],
     ["dataset.transforms.train", "NoSuchCrop"]),
    ("scenario_too_many_tasks", None, _tiny(**{"scenario.num_tasks": 9}), ["scenario.num_tasks=9"]),
    # files that are not YAML text, and keys given twice (the last used to win in silence)
    ("binary_file", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", _tiny(), ["{cfg}", "binary", "YAML"]),
    ("latin1_file", "seed: 1\nmethod: {name: er}  # caf\xe9\n".encode("latin-1"), _tiny(),
     ["{cfg}", "not UTF-8", "0xe9"]),
    ("duplicate_top_level_key", "method: {name: er}\nseed: 1\nmethod: {name: ewc}\n", _tiny(),
     ["{cfg}", "line 3", "'method'", "twice", "line 1", "keep one"]),
    ("duplicate_nested_key", "train:\n  optimizer:\n    lr: 0.1\n    lr: 0.01\n", _tiny(),
     ["{cfg}", "line 4", "'lr'", "twice", "line 3"]),
    ("duplicate_key_in_a_list", "scenario:\n  tasks: [[0, 1], [2, 3]]\ndataset:\n  transforms:\n    train:\n"
                                "      - {name: RandomCrop, size: 28, size: 32}\n", _tiny(), ["{cfg}", "'size'", "twice"]),
    ("duplicate_key_in_set", None, _tiny() + ["--set", "train.optimizer={lr: 0.1, lr: 0.2}"], ["--set", "'lr'", "twice"]),
    ("float_for_an_integer", None, _tiny(**{"train.epochs": "1e1"}), ["train.epochs", "10.0", "whole number 10"]),
]


def _experiment(tmp_path: Path, content) -> Path:
    path = tmp_path / "experiment.yaml"
    if content == "MISSING":
        return tmp_path / "missing.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text("{}\n" if content is None else content)
    return path


def _check(rc, err, words, cfg, out=None):
    assert rc != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("braincl: error: ") and "Traceback" not in err
    for word in words:
        assert word.replace("{cfg}", str(cfg)) in lines[0], (word, lines[0])
    if out is not None:
        assert not out.exists(), f"a refused run left {sorted(p.name for p in out.rglob('*'))}"


@pytest.mark.parametrize("case,content,args,words", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_run_refuses_with_one_clear_line(tmp_path, capsys, case, content, args, words):
    if case == "device_cuda_without_cuda":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
    cfg = _experiment(tmp_path, content)
    out = tmp_path / "out" / "run"
    rc = main(["run", str(cfg), "--out", str(out), *args])
    _check(rc, capsys.readouterr().err, words, cfg, out)
    assert not (tmp_path / "out").exists()

    # validate refuses the same config with the same message
    rc_validate = main(["validate", str(cfg), *args])
    captured = capsys.readouterr()
    _check(rc_validate, captured.err, words, cfg)
    assert captured.out == ""


def test_out_is_a_file(tmp_path, capsys):
    target = tmp_path / "results.txt"
    target.write_text("mine\n")
    rc = main(["run", str(_experiment(tmp_path, None)), "--out", str(target), *_tiny()])
    _check(rc, capsys.readouterr().err, ["--out", str(target), "is a file"], None)
    assert target.read_text() == "mine\n"
    rc = main(["run", str(_experiment(tmp_path, None)), "--out", str(target / "sub"), *_tiny()])
    _check(rc, capsys.readouterr().err, ["--out", "is a file"], None)


def test_out_cannot_be_written(tmp_path, capsys):
    if os.geteuid() == 0:
        if not Path("/proc/self").is_dir():
            pytest.skip("root can write anywhere, and there is no /proc to try")
        target = Path("/proc/braincl-test/run")  # nobody can create folders in /proc
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = locked / "run"
    rc = main(["run", str(_experiment(tmp_path, None)), "--out", str(target), *_tiny()])
    _check(rc, capsys.readouterr().err, ["--out", str(target), "cannot be written"], None)


def test_subprocess_stderr_is_one_line_without_warnings(tmp_path):
    """The real entry point: stderr holds the error line and nothing else (no torch.jit warning
    from compressai's imports, no traceback), for a refusal that builds BrainCL's codec."""
    cfg = _experiment(tmp_path, None)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "braincl.cli", "run", str(cfg), "--out", str(out),
           *_tiny("braincl", "4KB", **SMALL_BRAINCL)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("braincl: error: braincl: memory.budget="), proc.stderr
    assert "Warning" not in proc.stderr and not out.exists()


def test_results_follow_the_umask(tmp_path):
    from braincl.runner import run_experiment

    old = os.umask(0o027)
    try:
        run_experiment(config.load(None, tiny_overrides("finetune", None)), tmp_path / "run", log=lambda *_: None)
    finally:
        os.umask(old)
    assert (tmp_path / "run" / "metrics.json").stat().st_mode & 0o777 == 0o640


# ---------------------------------------------------------------------- backbone switching
def test_naming_another_backbone_starts_from_its_own_defaults(tmp_path):
    mnist_default = config.load(None, [])
    assert mnist_default["model"] == {"backbone": "resnet18_slim", "params": {"width": 8, "stem": "small"}}
    switched = config.load(None, ["model.backbone=resnet18"])
    assert switched["model"] == {"backbone": "resnet18", "params": {}}
    same = config.load(None, ["model.backbone=resnet18_slim", "model.params.width=4"])
    assert same["model"]["params"] == {"width": 4, "stem": "small"}  # the same backbone keeps its params
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"model": {"backbone": "resnet18_slim", "params": {"width": 4}}}))
    assert config.load(exp, ["model.backbone=resnet18", "model.params.stem=small"])["model"] == {
        "backbone": "resnet18", "params": {"stem": "small"}}


@pytest.mark.slow
def test_resnet18_on_mnist_just_runs(tmp_path, capsys):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"model": {"backbone": "resnet18"}}))
    sets = [s for s in tiny_overrides("finetune", None, **{"dataset.params.train_per_class": 10,
                                                          "dataset.params.test_per_class": 5})
            if not s.startswith("model.params")]
    rc = main(["run", str(exp), "--out", str(tmp_path / "out"), *_sets(sets)])
    assert rc == 0, capsys.readouterr().err
    import json

    record = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert record["config"]["model"] == {"backbone": "resnet18", "params": {}}


# ---------------------------------------------------------------------- stated minimum budgets
def _stated_minimum(message: str) -> int:
    found = re.findall(r"at least (\d+) bytes", message)
    assert found, message
    return int(found[0])


@pytest.mark.slow
@pytest.mark.parametrize("method,extra", [("braincl", SMALL_BRAINCL), ("jpeg_replay", {})])
def test_the_stated_minimum_budget_runs(tmp_path, capsys, method, extra):
    """A refusal's "give at least N bytes" is a promise: at N bytes the run trains every task."""
    cfg = _experiment(tmp_path, None)
    rc = main(["validate", str(cfg), *_tiny(method, "1000", **extra)])
    err = capsys.readouterr().err
    assert rc == 2 and "memory.budget" in err, f"{method} accepted 1000 bytes before training: {err}"
    minimum = _stated_minimum(err)
    rc = main(["run", str(cfg), "--out", str(tmp_path / "out"), *_tiny(method, str(minimum), **extra)])
    assert rc == 0, capsys.readouterr().err


def test_every_methods_defaults_pass_their_own_constraints():
    """The constraints file and the defaults YAML agree: every registered method validates with
    its own defaults."""
    from braincl.registry import METHODS

    for method in METHODS.names():
        config.load(None, [f"method.name={method}", "memory.budget=1MB"])


# ---------------------------------------------------------------------- output folder, Ctrl-C
@pytest.mark.parametrize("out,word", [("", "empty"), ("   ", "only spaces"), ("\t", "only spaces")])
def test_empty_out_is_refused_not_the_current_folder(tmp_path, capsys, monkeypatch, out, word):
    """An unset variable (``--out $OUTDIR``) must not write metrics.json into the current folder."""
    cfg = _experiment(tmp_path, None)
    monkeypatch.chdir(tmp_path)
    rc = main(["run", str(cfg), "--out", out, *_tiny()])
    _check(rc, capsys.readouterr().err, ["output folder (--out)", word, "give a folder path"], cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yaml"]


@pytest.mark.parametrize("command,where", [("run", "config.load"), ("run", "runner.preflight"),
                                           ("run", "runner.run_experiment"), ("validate", "config.load"),
                                           ("validate", "runner.preflight")])
def test_ctrl_c_anywhere_is_one_line_and_130(tmp_path, capsys, monkeypatch, where, command):
    """Ctrl-C while the config loads (imports of torch and the registry), during the checks, or
    during the run: one line, exit status 130, no traceback, no folder."""
    import importlib

    module, name = where.split(".")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(f"braincl.{module}"), name, interrupted)
    out = tmp_path / "out"
    args = ["--out", str(out)] if command == "run" else []
    rc = main([command, str(_experiment(tmp_path, None)), *args, *_tiny()])
    err = capsys.readouterr().err
    assert rc == 130 and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("braincl: interrupted"), err
    assert not out.exists()


def test_ctrl_c_during_an_import_waits_for_the_import(tmp_path, monkeypatch):
    """An interrupt that lands inside an import (a compiled extension aborts the process when
    interrupted there) is raised once the import has finished."""
    import signal
    import time

    from braincl.interrupts import held_during_imports

    (tmp_path / "slow_module_for_ctrl_c.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(0.3)\nLOADED = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with held_during_imports():
            import slow_module_for_ctrl_c  # noqa: F401

            time.sleep(5)  # the held interrupt comes here, within a few hundredths of a second
    assert sys.modules["slow_module_for_ctrl_c"].LOADED
    assert signal.getsignal(signal.SIGINT) is before
    sys.modules.pop("slow_module_for_ctrl_c")


def test_ctrl_c_at_any_moment_of_the_real_command(tmp_path):
    """The real process, interrupted from the first hundredth of a second (its imports) to the
    middle of training: one ``braincl:`` line, status 130 (or death by SIGINT when the interrupt
    lands in the imports of braincl.cli itself, as a shell expects), no traceback, and nothing left
    but a resumable checkpoint. Python's own start-up before any braincl code runs is not tested."""
    import signal
    import time

    cfg = _experiment(tmp_path, None)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for delay in (0.01, 0.1, 0.3, 1.0, 3.0):
        out = tmp_path / f"out{delay}"
        argv = ["run", str(cfg), "--out", str(out), "--quiet", *_tiny(**{"scenario.num_tasks": 5})]
        code = ("import sys; print('up', flush=True); from braincl.cli import main; "
                f"sys.exit(main({argv!r}))")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout.readline().strip() == "up"
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode in (130, -signal.SIGINT), (delay, proc.returncode, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("braincl: interrupted") and "Traceback" not in err, (delay, err)
        left = sorted(p.name for p in out.iterdir()) if out.exists() else []
        # nothing, or what lets a rerun resume (the checkpoint) and the logs that say it was interrupted;
        # never a record or a temporary file
        assert set(left) <= {"checkpoint.pt", "train.log", "steps.csv", "tasks.csv"}, (delay, left)
        if "train.log" in left:
            assert "run interrupted" in (out / "train.log").read_text(), (delay, left)


# ---------------------------------------------------------------------- the workflow config
def _workflow_error(tmp_path, configfile: Path) -> str:
    """The line of a refused dry run that holds the workflow's own message (Snakemake frames it
    with the file and line of the rule that raised it)."""
    from tests.test_workflow import snakemake

    out = snakemake("all", "-n", "--cores", "1", "--configfile", str(configfile), cwd=tmp_path, check=False)
    assert out.returncode != 0
    lines = [line for line in (out.stdout + out.stderr).splitlines()
             if line.startswith(("config grid", "config targets", str(configfile)))]
    assert lines, out.stdout + out.stderr
    return lines[0]


def _micro() -> dict:
    from tests.test_workflow import MICRO

    return yaml.safe_load(MICRO.read_text())


def test_workflow_negative_budget_says_what_to_write(tmp_path):
    cfg = _micro()
    cfg["grid"][0]["budgets"] = ["-10KB"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    line = _workflow_error(tmp_path, bad)
    assert "grid entry 1 (mnist5k)" in line and "must not be negative: '-10KB'" in line and "500KB" in line, line
    assert "does not match" not in line


def test_workflow_duplicate_key_is_refused(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_micro()) + "runs_dir: elsewhere\n")
    line = _workflow_error(tmp_path, bad)
    assert str(bad) in line and "'runs_dir' is given twice" in line and "keep one" in line, line


def test_personal_grid_colliding_with_a_built_in_target_names_the_fix(tmp_path):
    """A personal --configfile grid on top of the workflow's config/config.yaml, with a run path
    that a built-in target also has, at other settings."""
    built_in = _micro()
    entry = {**built_in["grid"][0], "methods": ["ewc"]}
    built_in["targets"] = {"full": [entry]}
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(built_in))
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"grid": [{**entry, "set": {**entry["set"], "train.epochs": 2}}]}))
    line = _workflow_error(tmp_path, mine)
    assert "mnist5k/cil/ewc/none/0 is also in grid with other settings" in line, line
    assert "label:" in line and "label: mnist5k-mine" in line and "variant:" in line
