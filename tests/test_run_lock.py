"""One run per output folder: a second run refuses at once and names the first; a lock left by a
killed run is taken over; a checkpoint write killed midway leaves no temporary file after the next
start; every output gets the same file mode."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from braincl import checkpoint, config, run_lock
from braincl.runner import CHECKPOINT, run_experiment
from tests.conftest import tiny_overrides

ENV = dict(os.environ, OMP_NUM_THREADS="1")
# long enough (five tasks of three epochs) that the first run is still training when the second, started
# once the first holds the folder, has imported torch and reaches the lock
SETS = tiny_overrides("er", "60KB", **{"scenario.num_tasks": 5, "train.epochs": 3})


def _cli(out: Path, cfg: Path) -> list[str]:
    return [sys.executable, "-m", "braincl.cli", "run", str(cfg), "--out", str(out), "--quiet",
            *sum((["--set", s] for s in SETS), [])]


def _same_results(a: dict, b: dict) -> None:
    assert a["accuracy"] == b["accuracy"] and a["summary"] == b["summary"] and a["memory"] == b["memory"]
    assert a["config"] == b["config"] and a["run"]["config_fingerprint"] == b["run"]["config_fingerprint"]


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# What a finished run leaves: its record and its logs (braincl.loggers), and no lock or temporary file.
RUN_OUTPUTS = ["metrics.json", "steps.csv", "tasks.csv", "train.log"]


def test_a_held_folder_is_refused_at_once_with_the_holder_named(tmp_path):
    out = tmp_path / "run"
    cfg = config.load(None, tiny_overrides("finetune", None))
    with run_lock.acquire(out):
        t0 = time.perf_counter()
        with pytest.raises(run_lock.FolderInUse) as err:
            run_experiment(cfg, out, log=lambda *_: None)
        assert time.perf_counter() - t0 < 5  # before building data or model
        message = str(err.value)
        assert "\n" not in message and str(out) in message and "--out" in message
        assert f"pid {os.getpid()} on host {socket.gethostname()}" in message
        assert _files(out) == [run_lock.LOCK_NAME]
    assert _files(out) == []  # released: the file goes with the lock


def test_two_concurrent_runs_one_refuses_the_other_matches_a_lone_run(tmp_path):
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("{}\n")
    out = tmp_path / "shared"
    # The second starts once the first holds the folder: started together, a loaded machine can delay one
    # process's imports past the other's whole run, and then nothing is contested.
    first = subprocess.Popen(_cli(out, cfg), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not (out / run_lock.LOCK_NAME).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (out / run_lock.LOCK_NAME).exists(), "the first run never took the folder"
    second = subprocess.Popen(_cli(out, cfg), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    procs = [first, second]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    codes = sorted(p.returncode for p, _, _ in results)
    assert codes == [0, 2], [(p.returncode, err) for p, _, err in results]
    (winner, _, _), = [r for r in results if r[0].returncode == 0]
    (_, _, refusal), = [r for r in results if r[0].returncode == 2]
    lines = refusal.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refusal, refusal
    assert lines[0].startswith("braincl: error: output folder (--out)") and "in use by another braincl run" in lines[0]
    assert f"pid {winner.pid} on host {socket.gethostname()}" in lines[0], lines[0]
    assert _files(out) == RUN_OUTPUTS

    lone = run_experiment(config.load(cfg, SETS), tmp_path / "lone", log=lambda *_: None)
    _same_results(json.loads((out / "metrics.json").read_text()), lone)


def test_a_stale_lock_and_a_killed_checkpoint_write_are_cleared_at_the_next_start(tmp_path):
    """The run is killed (SIGKILL) inside its first checkpoint write, after the temporary file is
    written and before it is renamed: the folder keeps the temporary file and the lock file of a
    dead process. The next run takes the lock over, removes the temporary file and finishes with
    the metrics of a lone run."""
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("{}\n")
    out = tmp_path / "run"
    argv = _cli(out, cfg)[3:]
    killer = ("import os, signal, sys\n"
              "real_replace = os.replace\n"
              "def replace(src, dst):\n"
              f"    if os.path.basename(str(src)).startswith('.{CHECKPOINT}.'):\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    return real_replace(src, dst)\n"
              "os.replace = replace\n"
              "from braincl.cli import main\n"
              f"sys.exit(main({argv!r}))\n")
    proc = subprocess.run([sys.executable, "-c", killer], env=ENV, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    left = _files(out)
    temporaries = [name for name in left if name.startswith(f".{CHECKPOINT}.") and name.endswith(".tmp")]
    assert len(temporaries) == 1 and run_lock.LOCK_NAME in left and CHECKPOINT not in left, left
    assert (out / temporaries[0]).stat().st_size > 0

    log = []
    record = run_experiment(config.load(cfg, SETS), out, log=log.append)
    assert any("taking over" in line and "ended without releasing it" in line for line in log), log
    assert _files(out) == RUN_OUTPUTS
    lone = run_experiment(config.load(cfg, SETS), tmp_path / "lone", log=lambda *_: None)
    _same_results(record, lone)


def test_stale_temporaries_of_metrics_go_too_and_other_files_stay(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    for name in (f".{CHECKPOINT}.abc123.tmp", ".metrics.json.x9.tmp", "notes.txt", ".checkpoint.ptx.tmp"):
        (out / name).write_text("x")
    run_experiment(config.load(None, tiny_overrides("finetune", None)), out, log=lambda *_: None)
    assert _files(out) == sorted([".checkpoint.ptx.tmp", "notes.txt", *RUN_OUTPUTS])


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_a_kept_checkpoint_has_the_mode_of_the_other_outputs(tmp_path, umask):
    old = os.umask(umask)
    try:
        run_experiment(config.load(None, tiny_overrides("finetune", None)), tmp_path / "run",
                       keep_checkpoint=True, log=lambda *_: None)
        checkpoint.save(tmp_path / "alone.pt", {"x": 1})
    finally:
        os.umask(old)
    modes = {name: (tmp_path / "run" / name).stat().st_mode & 0o777 for name in ("metrics.json", CHECKPOINT)}
    assert set(modes.values()) == {0o666 & ~umask}, modes
    assert (tmp_path / "alone.pt").stat().st_mode & 0o777 == 0o666 & ~umask


def test_simultaneous_checks_of_a_new_folder_never_fail(tmp_path):
    """Runs started together on a folder that does not exist yet each create it, probe it and remove
    it again; one check's removal must not make another report the folder as unwritable. (Which of
    them removes the folder last is a race: it may stay, empty, and the run that wins the lock uses it.)"""
    from concurrent.futures import ThreadPoolExecutor

    from braincl.runner import check_out_dir

    for i in range(20):
        out = tmp_path / f"new{i}" / "run"
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: check_out_dir(out), range(4)))
        assert all(isinstance(r, list) for r in results)
        assert not out.exists() or not any(out.iterdir())  # no probe file left behind
