"""The run record: one ``metrics.json`` per run, validated against ``schemas/metrics.schema.json``
and written atomically (temporary file in the same folder, fsync, rename)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata, resources
from pathlib import Path

SCHEMA_VERSION = 4


class RecordError(ValueError):
    """A run record that does not match the schema. The message names the file and the field."""


def schema() -> dict:
    return json.loads(resources.files("braincl").joinpath("schemas", "metrics.schema.json").read_text())


def validate_record(record: dict, name: str = "metrics.json") -> None:
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(record), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{'.'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message}" for e in errors[:10]]
        raise RecordError(f"{name} does not match the run-record schema v{SCHEMA_VERSION}:\n  - " + "\n  - ".join(lines))


def atomic_write_bytes(path: str | Path, data: bytes, mode: int | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; set it straight back
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj) -> None:
    """Write atomically, with the permissions a plain ``open`` would give under the user's umask
    (the temporary file of the atomic write is created 0600)."""
    atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode(), mode=0o666 & ~_umask())


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        # The revision names the code: outputs under results/ (other runs' records, tables being
        # rewritten while a grid runs) do not make it dirty; any other tracked change does.
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=here, capture_output=True, text=True,
                             timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results"],
                               cwd=top or here, capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device) -> dict:
    import torch

    name = str(device)
    if device.type == "cuda":
        name = f"{device} ({torch.cuda.get_device_name(device)})"
    return {
        "device": name,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "versions": {d: _version(d) for d in ("torchvision", "compressai", "numpy", "scikit-learn", "braincl-bench")},
        "git_revision": git_revision(),
    }
