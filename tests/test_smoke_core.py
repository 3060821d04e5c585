import pytest

from braincl.record import validate_record


@pytest.mark.parametrize("method", ["finetune", "joint", "er"])
def test_core_methods_end_to_end(run_tiny, method):
    record = run_tiny(method, budget=None if method != "er" else "60KB")
    validate_record(record)
    T = record["run"]["num_tasks"]
    assert len(record["accuracy"]["tag"]) == T
    assert 0.0 <= record["summary"]["last_acc_sample"] <= 1.0


def test_slim_backbone_unpickles_in_a_fresh_process(tmp_path):
    """Checkpoints pickle the model; a resumed process must find the lazily built class."""
    import subprocess
    import sys

    import torch

    from braincl.models.backbones import resnet18_slim

    net, _ = resnet18_slim(in_channels=1, image_size=28, stem="small_s2", width=4)
    path = tmp_path / "net.pt"
    torch.save(net, path)
    code = (f"import torch; net = torch.load({str(path)!r}, weights_only=False); "
            "print(type(net).__name__, net(torch.zeros(2, 1, 28, 28)).shape[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SlimResNet", "32"]
