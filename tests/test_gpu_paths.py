"""What can be checked of the CUDA-only branches (docs/gpu.md) on a machine without a GPU: each
branch must fall back to the CPU path, and the settings that act on a CPU must act as documented."""

from __future__ import annotations

import pytest
import torch

from braincl.config import ConfigError
from braincl.engine import Engine, resolve_device

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU fallbacks of CUDA-only paths")

CPU = torch.device("cpu")
TRAIN = {"batch_size": 4, "eval_batch_size": 4, "progress": False, "epochs": 1,
         "optimizer": {"name": "sgd", "lr": 0.1}, "scheduler": {"name": "none"}}


def test_device_auto_is_the_cpu_and_a_missing_cuda_device_names_the_setting():
    assert resolve_device("auto") == CPU
    assert resolve_device("cpu") == CPU
    for name in ("cuda", "cuda:3"):
        with pytest.raises(ConfigError, match=r"device: auto.*device: cpu"):
            resolve_device(name)


def test_amp_is_ignored_on_the_cpu():
    engine = Engine({**TRAIN, "amp": True}, CPU)
    assert engine.amp is False
    with engine.autocast():
        assert not torch.is_autocast_enabled()
        out = torch.nn.Linear(3, 2)(torch.randn(2, 3))
    assert out.dtype == torch.float32


def test_cudnn_benchmark_is_left_alone_on_the_cpu():
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = False
    try:
        Engine({**TRAIN, "cudnn_benchmark": True}, CPU)
        assert torch.backends.cudnn.benchmark is False
    finally:
        torch.backends.cudnn.benchmark = before


def test_pin_memory_is_not_passed_to_the_loader_on_the_cpu():
    data = torch.utils.data.TensorDataset(torch.zeros(8, 3))
    assert Engine({**TRAIN, "pin_memory": True}, CPU).loader(data, shuffle=False).pin_memory is False


def test_channels_last_applies_on_the_cpu_and_leaves_labels_alone():
    engine = Engine({**TRAIN, "channels_last": True}, CPU)
    model = engine.prepare(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten()))
    assert model[0].weight.is_contiguous(memory_format=torch.channels_last)
    x, y = torch.randn(2, 3, 8, 8), torch.tensor([0, 1])
    bx, by = engine.to_device((x, y))
    assert bx.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(bx, x) and torch.equal(by, y)  # same values, non_blocking copy included
    plain_x, _ = Engine(TRAIN, CPU).to_device((x, y))
    assert plain_x.is_contiguous() and torch.equal(plain_x, x)


def test_seeding_without_cuda_and_the_record_names_the_cpu():
    from braincl.record import environment
    from braincl.seeding import seed_everything

    seed_everything(3)
    a = torch.rand(3)
    seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    assert environment(CPU)["device"] == "cpu"
