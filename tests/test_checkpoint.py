"""The resume checkpoint is trusted only when intact: an empty, truncated, altered or foreign file
stops the run with one line naming the file and the two ways forward; a long-term cue altered
inside an otherwise valid checkpoint is caught by its own CRC32, with its task, index and file."""

import pickle

import numpy as np
import pytest

from braincl import checkpoint
from braincl.checkpoint import CheckpointError
from braincl.cli import main
from braincl.memory.cues import CueCorrupted
from braincl.runner import CHECKPOINT, run_experiment
from tests.conftest import tiny_overrides

SMALL = {"method.params.N": 8, "method.params.M": 8, "method.params.codec_steps": 6,
         "method.params.wake_epochs": 1, "method.params.sleep_epochs": 1}
BRAINCL = tiny_overrides("braincl", "30KB", **SMALL)


def _assert_one_clear_line(message: str, path) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert str(path) in message
    assert "delete it to restart the run from task 1" in message and "restore it" in message


def test_round_trip(tmp_path):
    path = tmp_path / "c.pt"
    obj = {"a": np.arange(5), "b": [b"\x00\x01", "text"]}
    checkpoint.save(path, obj)
    back = checkpoint.load(path)
    assert np.array_equal(back["a"], obj["a"]) and back["b"] == obj["b"]


def _damage(path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "header_only":
        path.write_bytes(data[:20])
    elif how == "truncated_half":
        path.write_bytes(data[: len(data) // 2])
    elif how == "truncated_last_byte":
        path.write_bytes(data[:-1])
    elif how == "flipped":
        i = checkpoint.HEADER.size + (len(data) - checkpoint.HEADER.size) // 3
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x10]) + data[i + 1:])
    elif how == "appended":
        path.write_bytes(data + b"junk")
    elif how == "foreign":
        path.write_bytes(pickle.dumps({"not": "a checkpoint"}))
    else:
        raise AssertionError(how)


DAMAGE = {"empty": "is empty", "header_only": "truncated", "truncated_half": "truncated",
          "truncated_last_byte": "truncated", "flipped": "checksum", "appended": "damaged",
          "foreign": "not a braincl checkpoint"}


@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_damaged_file_is_named_with_the_ways_forward(tmp_path, how):
    path = tmp_path / "c.pt"
    checkpoint.save(path, {"x": list(range(1000))})
    _damage(path, how)
    with pytest.raises(CheckpointError) as err:
        checkpoint.load(path)
    assert DAMAGE[how] in str(err.value)
    _assert_one_clear_line(str(err.value), path)


@pytest.fixture(scope="module")
def finished_braincl(tmp_path_factory):
    """A finished two-task BrainCL run that kept its checkpoint (next_task == 2): resuming it
    loads and checks every long-term cue, then only writes the record again."""
    from braincl import config

    out = tmp_path_factory.mktemp("braincl") / "run"
    run_experiment(config.load(None, BRAINCL), out, keep_checkpoint=True, log=lambda *_: None)
    return out, (out / CHECKPOINT).read_bytes()


def _cli(out):
    return main(["run", "none", "--out", str(out), *sum((["--set", s] for s in BRAINCL), []),
                 "--keep-checkpoint"])


@pytest.fixture
def config_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "none").write_text("{}\n")


@pytest.mark.parametrize("how", ["empty", "truncated_half", "flipped"])
def test_cli_refuses_a_damaged_checkpoint(finished_braincl, config_file, capsys, how):
    out, pristine = finished_braincl
    path = out / CHECKPOINT
    path.write_bytes(pristine)
    (out / "metrics.json").unlink(missing_ok=True)
    _damage(path, how)
    assert _cli(out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("braincl: error: checkpoint") and DAMAGE[how] in err
    _assert_one_clear_line(err, path)
    assert not (out / "metrics.json").exists()


# (cue, byte) positions inside long-term memory: first byte of the first cue, a middle byte of a
# middle cue, last byte of the last cue
POSITIONS = [(0, "first"), (0.5, "middle"), (1, "last")]


@pytest.mark.parametrize("cue_at,byte_at", POSITIONS)
def test_corrupted_long_term_cue_in_a_valid_checkpoint_is_caught(finished_braincl, config_file, capsys,
                                                                  cue_at, byte_at):
    out, pristine = finished_braincl
    path = out / CHECKPOINT
    path.write_bytes(pristine)
    (out / "metrics.json").unlink(missing_ok=True)
    ckpt = checkpoint.load(path)
    ltm = ckpt["learner"]["ltm"]
    i = int(round(cue_at * (len(ltm) - 1)))
    cue = bytearray(ltm.strings[i])
    j = {"first": 0, "middle": len(cue) // 2, "last": len(cue) - 1}[byte_at]
    cue[j] ^= 0x01
    ltm.strings[i] = bytes(cue)
    checkpoint.save(path, ckpt)  # a fresh file checksum: only the cue's own CRC32 can tell

    task = int(ltm.tasks[i])
    within = int(np.sum(ltm.tasks[:i] == task))
    assert _cli(out) == 2
    err = capsys.readouterr().err.strip()
    assert f"cue {i} (task {task + 1}, cue {within} of that task" in err and "CRC32" in err
    assert f"loaded from {path}" in err and "\n" not in err and "Traceback" not in err
    assert not (out / "metrics.json").exists()

    from braincl import config

    with pytest.raises(CueCorrupted):
        run_experiment(config.load(None, BRAINCL), out, keep_checkpoint=True, log=lambda *_: None)


def test_intact_checkpoint_resumes(finished_braincl, config_file, capsys):
    out, pristine = finished_braincl
    (out / CHECKPOINT).write_bytes(pristine)
    (out / "metrics.json").unlink(missing_ok=True)
    assert _cli(out) == 0
    assert "resuming at task" in capsys.readouterr().out
    assert (out / "metrics.json").exists()
