"""Grad-CAM attention maps: the formula on a network where it has a closed form, and the maps a
tiny end-to-end run records (schema v2)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from braincl.attention import MAP_SIZE, fixed_test_indices, grad_cam, target_layer


class GapNet(nn.Module):
    """conv -> layer4 (identity) -> global average pool -> linear: Grad-CAM equals CAM here
    (Selvaraju et al. 2017, Sec. 3.1), i.e. ReLU(sum_k w[c, k] A_k) up to a positive factor."""

    def __init__(self):
        super().__init__()
        self.backbone = nn.Module()
        self.backbone.layer4 = nn.Conv2d(1, 3, kernel_size=3, padding=1)
        self.fc = nn.Linear(3, 4)

    def forward(self, x):
        return self.fc(self.backbone.layer4(x).mean(dim=(2, 3)))


def test_grad_cam_equals_cam_for_global_average_pooling():
    torch.manual_seed(0)
    model = GapNet().eval()
    x = torch.randn(2, 1, 5, 5)
    maps, pred = grad_cam(model, target_layer(model), x, num_classes=4, size=5)
    with torch.no_grad():
        acts = model.backbone.layer4(x)
        logits = model(x)
    assert (pred == logits.argmax(1).numpy()).all()
    for i in range(2):
        cam = torch.relu(torch.einsum("k,khw->hw", model.fc.weight[pred[i]].detach(), acts[i])).numpy()
        np.testing.assert_allclose(maps[i], cam / cam.max(), atol=1e-5)


def test_grad_cam_respects_seen_classes():
    torch.manual_seed(1)
    model = GapNet().eval()
    _, pred = grad_cam(model, target_layer(model), torch.randn(6, 1, 5, 5), num_classes=2)
    assert set(pred.tolist()) <= {0, 1}


def test_fixed_indices_are_stable_and_in_range():
    a, b = fixed_test_indices(40, 5), fixed_test_indices(40, 5)
    assert a == b and len(set(a)) == 5 and all(0 <= i < 40 for i in a)
    assert fixed_test_indices(3, 8) == [0, 1, 2]


def test_tiny_run_records_attention_maps(run_tiny, tmp_path):
    from analysis.load import load_results
    from braincl.record import SCHEMA_VERSION, validate_record

    record = run_tiny("finetune", out=tmp_path / "runs" / "finetune",
                      **{"eval.attention.enabled": True, "eval.attention.num_images": 3})
    assert record["schema_version"] == SCHEMA_VERSION == 4
    validate_record(record)
    after = record["analysis"]["attention"]["after_task"]
    assert [e["task"] for e in after] == [0, 1]
    assert after[0]["test_indices"] == after[1]["test_indices"]  # the same images after every task
    for entry in after:
        maps = np.asarray(entry["maps"])
        assert maps.shape == (3, MAP_SIZE, MAP_SIZE)
        assert maps.min() >= 0 and maps.max() <= 1
        # each map is normalised by its own peak, unless Grad-CAM is zero everywhere
        peaks = maps.reshape(3, -1).max(1)
        assert np.all((np.abs(peaks - 1) < 1e-3) | (peaks == 0))
    # the images come from task 0, whose remapped labels are 0 .. (classes in task 0) - 1
    assert set(after[0]["labels"]) <= set(range(len(record["scenario"]["tasks"][0])))
    # the analysis package reads the record: 3 maps after each of 2 tasks
    res = load_results(tmp_path / "runs")
    assert not res.errors and len(res.attention) == 6
    assert res.attention["map"].iloc[0].shape == (MAP_SIZE, MAP_SIZE)
