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


# CPU feature flags that decide which vector kernels MKL, oneDNN and ATen dispatch to, and so the
# order of floating-point sums: two machines that differ here differ in the last bits of a run.
SIMD_FLAG_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "neon", "asimd", "sve")


def cpu_info() -> dict:
    """The CPU a run used: model name, architecture, logical cores, the vector instruction set ATen
    dispatches to (``torch.backends.cpu.get_cpu_capability()``, e.g. AVX2, AVX512) and the SIMD flags
    the CPU reports (Linux ``/proc/cpuinfo``; None where that file is absent)."""
    import torch

    model, flags = None, None
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if model is None and key in ("model name", "hardware", "cpu model"):
            model = value.strip()
        if flags is None and key in ("flags", "features"):
            flags = sorted({f for f in value.split() if f.startswith(SIMD_FLAG_PREFIXES)})
    try:
        capability = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        capability = None
    return {"model": model or platform.processor() or None, "machine": platform.machine(),
            "logical_cores": os.cpu_count(), "torch_capability": capability, "simd_flags": flags}


# Lines of torch.__config__.show()'s "Build settings" that change numerics or the kernels used.
BUILD_SETTINGS = ("BLAS_INFO", "LAPACK_INFO", "USE_MKL", "USE_MKLDNN", "USE_OPENMP", "CUDA_VERSION", "CUDNN_VERSION")


def torch_build() -> dict:
    """How the installed torch was built: version and commit, CUDA (None: a CPU build), the libraries
    it was built with (the bullet lines of ``torch.__config__.show()``: compiler, MKL, oneDNN, OpenMP)
    and the build settings that matter for numerics (``BUILD_SETTINGS``)."""
    import torch

    shown = torch.__config__.show()
    libraries, settings = [], {}
    for line in shown.splitlines():
        line = line.strip()
        if line.startswith("- Build settings:"):
            for item in line.split(":", 1)[1].split(", "):
                key, _, value = item.strip().partition("=")
                if key in BUILD_SETTINGS:
                    settings[key] = value.strip()
        elif line.startswith("- "):
            libraries.append(line[2:])
    return {"version": torch.__version__, "git_version": getattr(torch.version, "git_version", None),
            "cuda": torch.version.cuda, "debug": bool(getattr(torch.version, "debug", False)),
            "libraries": libraries, "settings": settings}


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
        "cpu": cpu_info(),
        "torch_build": torch_build(),
    }
