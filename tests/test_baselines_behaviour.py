"""What each baseline does, checked on the tiny MNIST scenario without (or with minimal) training:
the property its paper relies on, not only that it runs."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from braincl.memory import BudgetExceeded
from braincl.memory.budget import module_nbytes
from braincl.memory.selection import herding, random_selection
from conftest import build_learner as make_learner  # the runner's own set-up, without training


def first_batch(learner, task, n=16):
    data = task.train.dataset(learner.ctx.eval_transform)
    x = torch.stack([data[i][0] for i in range(n)])
    return x, torch.as_tensor([data[i][1] for i in range(n)])


def checkpoint_roundtrip(learner):
    """The runner torch.saves the learner's state after each task: it must pickle."""
    buf = io.BytesIO()
    torch.save(learner.state_dict(), buf)
    assert buf.tell() > 0


# ---------------------------------------------------------------------------------------------- ewc
def test_ewc_penalty_is_zero_at_the_anchor_and_grows_when_weights_move(tiny_cfg):
    learner, scenario = make_learner(tiny_cfg("ewc", budget="2MB"))
    t0 = scenario.task(0)
    learner.begin_task(t0)
    learner.end_task(t0)
    assert all((f >= 0).all() for f in learner.fisher.values())
    assert sum(f.sum() for f in learner.fisher.values()) > 0
    assert learner.penalty().item() == 0.0
    learner.begin_task(scenario.task(1))  # the head grows: new rows have no anchor and cost nothing
    with torch.no_grad():
        learner.model.head.fc.weight[2:] += 1.0
    assert learner.penalty().item() == 0.0
    with torch.no_grad():
        for p in learner.model.backbone.parameters():
            p.add_(0.01)
    assert learner.penalty().item() > 0.0
    checkpoint_roundtrip(learner)


def test_ewc_charges_exact_fisher_and_anchor_bytes(tiny_cfg):
    learner, scenario = make_learner(tiny_cfg("ewc", budget="2MB"))
    for t in range(2):
        learner.begin_task(scenario.task(t))
        learner.end_task(scenario.task(t))
        n_params = sum(p.numel() for p in learner.model.parameters())
        assert learner.memory().parts["other"] == 2 * 4 * n_params
    assert learner.memory().charged == learner.state_nbytes(scenario.num_classes)


def test_ewc_refuses_a_budget_that_cannot_hold_its_fisher(tiny_cfg):
    with pytest.raises(BudgetExceeded, match="Fisher"):
        make_learner(tiny_cfg("ewc", budget="10KB"))


# ---------------------------------------------------------------------------------------------- lwf
def test_lwf_distillation_is_zero_while_student_equals_teacher(tiny_cfg):
    learner, scenario = make_learner(tiny_cfg("lwf"))
    learner.begin_task(scenario.task(0))
    learner.end_task(scenario.task(0))
    task = scenario.task(1)
    learner.begin_task(task)
    learner.model.eval()  # the teacher is in eval mode; compare like with like
    x, y = first_batch(learner, task)
    ce_new = F.cross_entropy(learner.model(x)[:, 2:], y - 2)
    assert learner.loss(x, y).item() == pytest.approx(ce_new.item(), abs=1e-6)
    with torch.no_grad():
        learner.model.head.fc.weight[0] += 0.5  # one old logit moves relative to the other
    assert learner.loss(x, y).item() > ce_new.item() + 1e-4
    assert learner.memory().parts["teacher"] == module_nbytes(learner.teacher)
    assert learner.memory().charged == 0  # the teacher is reported, not charged, by default


def test_teacher_is_charged_when_the_policy_says_so(tiny_cfg):
    learner, scenario = make_learner(tiny_cfg("lwf", budget="400KB", **{"memory.charge_teacher": True}))
    learner.begin_task(scenario.task(0))
    learner.end_task(scenario.task(0))
    assert learner.memory().charged == module_nbytes(learner.teacher) > 0


# ---------------------------------------------------------------------------------------------- icarl
def running_mean_error(features, order):
    feats = features / np.linalg.norm(features, axis=1, keepdims=True)
    mu = feats.mean(0)
    running = np.cumsum(feats[order], axis=0) / np.arange(1, len(order) + 1)[:, None]
    return np.linalg.norm(running - mu, axis=1)


def test_icarl_herding_tracks_the_class_mean_better_than_random(tiny_cfg, monkeypatch):
    learner, scenario = make_learner(tiny_cfg("icarl", budget="60KB"))
    task = scenario.task(0)
    learner.begin_task(task)
    # a constructed feature set: two clusters per class, the far one rare, so a small random pick
    # easily misses the class mean
    rng = np.random.default_rng(0)
    feats = {}

    def fake_features(images):
        out = rng.normal(0, 0.3, (len(images), 8)) + np.where(rng.random(len(images)) < 0.2, 3.0, -1.0)[:, None]
        feats[len(feats)] = out
        return out

    monkeypatch.setattr(learner, "selection_features", fake_features)
    learner.end_task(task)
    m = learner.quota()
    for k, cls in enumerate(task.classes):
        chosen = np.flatnonzero(learner.buffer.labels.numpy() == cls)
        # the buffer holds the first m herding picks, in order; recover their rows in the feature set
        order = herding(feats[k], m)
        herd = running_mean_error(feats[k], order)
        rand = np.mean([running_mean_error(feats[k], random_selection(feats[k], m, seed=s)) for s in range(20)], 0)
        assert len(chosen) == m
        images = task.train.source.read_many(task.train.indices[np.flatnonzero(task.train.labels == cls)])
        assert torch.equal(learner.buffer.images[chosen], images[torch.as_tensor(order)])
        assert herd.mean() < 0.5 * rand.mean()


def test_icarl_bce_loss_targets_labels_on_new_outputs_and_teacher_sigmoids_on_old(tiny_cfg):
    """loss: bce is the iCaRL paper's Alg. 3 (Mammoth models/icarl.py): one BCE over every seen
    output; new outputs target the one-hot label, old outputs the previous model's sigmoid."""
    learner, scenario = make_learner(tiny_cfg("icarl", budget="60KB", **{"method.params.loss": "bce"}))
    first = scenario.task(0)
    learner.begin_task(first)
    learner.end_task(first)
    second = scenario.task(1)
    learner.begin_task(second)
    x = torch.stack([learner.ctx.eval_transform(img) for img in learner.buffer.images[:4]])
    y = torch.tensor([2, 3, 2, 3])
    learner.model.eval()
    with torch.no_grad():
        logits, old = learner.model(x), learner.teacher_logits(x)
        targets = torch.cat([torch.sigmoid(old), F.one_hot(y - 2, 2).float()], dim=1)
        expected = F.binary_cross_entropy_with_logits(logits, targets)
        assert torch.allclose(learner.loss(x, y), expected)
        # and it is not the default ce_kd loss
        learner.params["loss"] = "ce_kd"
        assert not torch.allclose(learner.loss(x, y), expected)


def test_icarl_predicts_by_nearest_mean_and_records_the_cnn(tiny_cfg):
    learner, scenario = make_learner(tiny_cfg("icarl", budget="60KB"))
    task = scenario.task(0)
    learner.begin_task(task)
    learner.end_task(task)
    assert set(learner.predictors()) == {"main", "cnn"}
    learner.eval_mode()
    feats = F.normalize(torch.as_tensor(learner.selection_features(learner.buffer.images)).float(), dim=1)
    x = torch.stack([learner.ctx.eval_transform(img) for img in learner.buffer.images])
    with torch.no_grad():
        scores = learner.nme(x)
    labels = learner.buffer.labels.long()
    means = torch.stack([F.normalize(feats[labels == c].mean(0), dim=0) for c in task.classes])
    expected = torch.cdist(feats, means).argmin(1)
    assert torch.equal(scores.argmax(1), expected)
    checkpoint_roundtrip(learner)
    assert "class_means" not in learner.state_dict()  # a cache of (model, buffer), not stored memory


def test_icarl_running_halving_means_follow_mammoth(tiny_cfg):
    """class_means: running_halving (Mammoth models/icarl.py): raw features, batch means averaged
    into a running value that halves at each new batch; the NME compares raw features with them."""
    from baselines.icarl import running_halving_mean

    feats = torch.tensor([[0.0], [2.0], [4.0], [8.0], [16.0]])
    # batches of 2: mean 1, then (1 + 6) / 2 = 3.5, then (3.5 + 16) / 2 = 9.75
    assert running_halving_mean(feats, 2).item() == pytest.approx(9.75)
    assert running_halving_mean(feats, 5).item() == pytest.approx(6.0)  # one batch: the plain mean
    learner, scenario = make_learner(tiny_cfg("icarl", budget="60KB", **{"method.params.class_means": "running_halving"}))
    task = scenario.task(0)
    learner.begin_task(task)
    learner.end_task(task)
    raw = torch.as_tensor(learner.selection_features(learner.buffer.images)).float()
    labels = learner.buffer.labels.long()
    means = learner.compute_class_means()
    B = learner.ctx.cfg["train"]["batch_size"]
    for c in task.classes:
        torch.testing.assert_close(means[c], running_halving_mean(raw[labels == c], B))
    x = torch.stack([learner.ctx.eval_transform(img) for img in learner.buffer.images])
    with torch.no_grad():
        scores = learner.nme(x)
    expected = torch.cdist(raw, torch.stack([means[c] for c in task.classes])).argmin(1)
    assert torch.equal(scores.argmax(1), torch.as_tensor(task.classes)[expected])


# ---------------------------------------------------------------------------------------------- der++
def test_derpp_stores_the_logits_at_insertion_and_replays_them(tiny_cfg):
    learner, scenario = make_learner(tiny_cfg("derpp", budget="60KB"))
    task = scenario.task(0)
    learner.begin_task(task)
    learner.end_task(task)
    buf = learner.buffer
    learner.eval_mode()
    x = torch.stack([learner.ctx.eval_transform(img) for img in buf.images])
    with torch.no_grad():
        now = learner.model(x)
    stored = buf.extras["logits"]
    assert stored.dtype == torch.float16 and stored.shape == (len(buf), scenario.num_classes)
    torch.testing.assert_close(stored[:, :2].float(), now, atol=2e-3, rtol=2e-3)
    assert (stored[:, 2:] == 0).all() and set(buf.extras) == {"logits"}
    # exact charge: image + int16 label + fp16 logits over every class of the scenario
    assert buf.nbytes() == len(buf) * (28 * 28 + 2 + 2 * scenario.num_classes) == learner.memory().charged

    task1 = scenario.task(1)
    learner.begin_task(task1)
    learner.model.eval()  # deterministic forward passes for the comparison
    new_x, new_y = first_batch(learner, task1)
    step = learner.step(task1)
    replay = [torch.cat([x, x]), torch.cat([buf.labels.long()] * 2), torch.cat([stored.float()] * 2)]
    base = step((new_x, new_y), replay).item()
    moved = [replay[0], replay[1], replay[2].clone()]
    moved[2][:, :2] += 10.0  # the logits stored at insertion count
    assert step((new_x, new_y), moved).item() > base + 10 * learner.params["alpha"]
    padded = [replay[0], replay[1], replay[2].clone()]
    padded[2][:, 2:4] += 10.0  # so does the zero pad of an output grown since (Mammoth matches every output)
    assert step((new_x, new_y), padded).item() > base + 10 * learner.params["alpha"]
    beyond = [replay[0], replay[1], replay[2].clone()]
    beyond[2][:, 4:] += 10.0  # outputs the model does not have yet are not matched
    assert step((new_x, new_y), beyond).item() == pytest.approx(base, abs=1e-5)
    checkpoint_roundtrip(learner)


def test_der_fixed_head_has_every_output_from_the_start_and_stores_them(tiny_cfg):
    """``head: fixed`` (Mammoth's full-width head): all outputs exist on the first task, the
    cross-entropy pushes the unseen ones down, and the stored logits carry those values instead of a
    zero pad; the head never grows again. Evaluation still ranks the seen classes only."""
    learner, scenario = make_learner(tiny_cfg("der", budget="60KB", **{"method.params.head": "fixed"}))
    task = scenario.task(0)
    learner.begin_task(task)
    assert learner.model.num_classes == scenario.num_classes
    learner.train_task(task)
    learner.end_task(task)
    stored = learner.buffer.extras["logits"].float()
    unseen = stored[:, 2:]
    assert (unseen != 0).all() and unseen.mean() < stored[:, :2].max(1).values.mean()
    learner.begin_task(scenario.task(1))
    assert learner.model.num_classes == scenario.num_classes
    from braincl.evaluate import evaluate_seen_tasks

    out = evaluate_seen_tasks(learner, scenario, 1)
    assert len(out["per_class"]) == 4 and len(out["rows"]["main"]["tag"]) == 2
    checkpoint_roundtrip(learner)


# ---------------------------------------------------------------------------------------------- bic
def test_bic_stage_two_trains_only_the_bias_layer(tiny_cfg, monkeypatch):
    learner, scenario = make_learner(tiny_cfg("bic", budget="60KB"))
    learner.begin_task(scenario.task(0))
    learner.end_task(scenario.task(0))
    task = scenario.task(1)
    learner.begin_task(task)
    train, val = learner.split_validation(task)
    assert sum(len(d) for d in train) + len(val) == len(task.train) + len(learner.buffer)
    seen = {}
    fit_bias = learner.fit_bias

    def spy(val):
        seen["before"] = copy.deepcopy(learner.model.state_dict())
        fit_bias(val)
        seen["after"] = learner.model.state_dict()

    monkeypatch.setattr(learner, "fit_bias", spy)
    learner.train_task(task)
    for name, value in seen["before"].items():
        assert torch.equal(value, seen["after"][name]), name
    assert (learner.bias.alpha.item(), learner.bias.beta.item()) != (1.0, 0.0)
    learner.end_task(task)
    mem = learner.memory()
    assert mem.parts["other"] == 8 and mem.charged <= learner.budget.total
    assert mem.parts["teacher"] == module_nbytes(learner.teacher) + module_nbytes(learner.teacher_bias)
    monkeypatch.undo()  # the spy is a local function: not part of the learner's state
    checkpoint_roundtrip(learner)


# ---------------------------------------------------------------------------------------------- wa
def test_weight_aligning_equalises_the_mean_norms():
    from baselines.wa import align_weights

    fc = torch.nn.Linear(6, 5)
    with torch.no_grad():
        fc.weight[3:] *= 4.0
    before = fc.weight[3:].clone()
    gamma = align_weights(fc, 3)
    norms = fc.weight.norm(dim=1)
    assert norms[:3].mean().item() == pytest.approx(norms[3:].mean().item(), rel=1e-6)
    torch.testing.assert_close(fc.weight[3:], before * gamma)  # a rescaling, not a change of direction


def test_wa_aligns_after_each_incremental_task(tiny_cfg):
    learner, scenario = make_learner(tiny_cfg("wa", budget="60KB"))
    for t in range(2):
        learner.begin_task(scenario.task(t))
        learner.train_task(scenario.task(t))
        learner.end_task(scenario.task(t))
    norms = learner.model.head.fc.weight.norm(dim=1)
    assert norms[:2].mean().item() == pytest.approx(norms[2:].mean().item(), rel=1e-5)
    assert (learner.model.head.fc.weight >= 0).all()  # weight clipping
    assert len(learner.gammas) == 1


# ---------------------------------------------------------------------------------------------- jpeg
@pytest.mark.parametrize("tables", ["shared", "per_file"])
@pytest.mark.parametrize("budget", ["6KB", "25KB", "60KB", "200KB"])
def test_jpeg_replay_keeps_its_bytes_within_the_budget(tiny_cfg, budget, tables):
    from baselines.jpeg_replay import METADATA_BYTES, decode_jpeg, encode_jpeg, jpeg_tables, tables_nbytes

    learner, scenario = make_learner(tiny_cfg("jpeg_replay", budget=budget, **{"method.params.tables": tables}))
    shared = tables == "shared"
    for t in range(2):
        learner.begin_task(scenario.task(t))
        learner.end_task(scenario.task(t))
        files = [p for ps in learner.payloads.values() for p in ps]
        charged = learner.memory().charged
        in_use = {learner.quality[c] for c, ps in learner.payloads.items() if ps}
        assert charged == (sum(len(p) for p in files) + METADATA_BYTES * len(files)
                           + (tables_nbytes(in_use, 1) if shared else 0))
        assert charged <= learner.budget.total
        assert all(p[:2] == b"\xff\xd8" for p in files)  # JPEG streams (SOI marker)
    cls0 = next(iter(learner.payloads))
    img = decode_jpeg(files[0], jpeg_tables(learner.quality[cls0], 1) if shared else None)
    assert img.dtype == torch.uint8 and tuple(img.shape) == learner.ctx.image_shape
    # the quality rule: the chosen quality meets the target in the final share; the next higher does not
    qualities = sorted(learner.params["qualities"])
    final_share = (learner.budget.total - learner.reserved_bytes()) // scenario.num_classes
    raw = scenario.task(0).train.source.bytes_per_image + 2
    target = max(1, int(np.ceil(learner.params["target_ratio"] * (final_share // raw))))
    assert learner.target() == target
    task = scenario.task(0)
    cls = task.classes[0]
    idx = np.flatnonzero(task.train.labels == cls)
    order = random_selection(idx, len(idx), seed=learner.ctx.seed * 1000 + cls)
    images = task.train.source.read_many(task.train.indices[idx[order]])[:target]
    cost = lambda q: sum(len(encode_jpeg(i, q, shared)) + METADATA_BYTES for i in images)  # noqa: E731
    q = learner.quality[cls]
    assert cost(q) <= final_share or q == qualities[0]
    higher = [h for h in qualities if h > q]
    assert not higher or cost(higher[0]) > final_share
    checkpoint_roundtrip(learner)


def test_shared_jpeg_tables_decode_exactly_and_save_bytes(tiny_cfg):
    """An abbreviated stream plus its quality's tables decodes to the same pixels as a whole file
    at that quality, and is much smaller than an optimised whole file."""
    from baselines.jpeg_replay import decode_jpeg, encode_jpeg, jpeg_tables

    learner, scenario = make_learner(tiny_cfg("jpeg_replay", budget="60KB"))
    task = scenario.task(0)
    images = task.train.source.read_many(task.train.indices[:20])
    for q in (10, 50, 90):
        for img in images:
            whole = encode_jpeg(img, q)
            short = encode_jpeg(img, q, abbreviated=True)
            assert b"\xff\xdb" not in short  # no quantisation table (DQT) in the stream itself
            # the same quantisation; optimised Huffman coding is lossless: the same pixels
            assert torch.equal(decode_jpeg(short, jpeg_tables(q, 1)), decode_jpeg(whole))
        saved = np.mean([len(encode_jpeg(i, q)) - len(encode_jpeg(i, q, abbreviated=True)) for i in images])
        assert saved > 50, (q, saved)


def test_jpeg_replay_refuses_a_budget_without_room_for_one_exemplar(tiny_cfg):
    with pytest.raises(BudgetExceeded, match="cannot hold one JPEG exemplar"):
        make_learner(tiny_cfg("jpeg_replay", budget="3KB"))


# ---------------------------------------------------------------------------------------------- teacher policy
def test_a_charged_teacher_is_refused_or_paid_for_with_exemplars(tiny_cfg):
    with pytest.raises(BudgetExceeded, match="teacher"):
        make_learner(tiny_cfg("icarl", budget="60KB", **{"memory.charge_teacher": True}))
    charged, _ = make_learner(tiny_cfg("icarl", budget="400KB", **{"memory.charge_teacher": True}))
    free, scenario = make_learner(tiny_cfg("icarl", budget="400KB"))
    for learner in (charged, free):
        learner.begin_task(scenario.task(0))
        learner.end_task(scenario.task(0))
        assert learner.memory().charged <= learner.budget.total
    teacher = module_nbytes(charged.teacher)
    assert charged.memory().charged == charged.buffer.nbytes() + teacher
    # the teacher's bytes come out of the exemplars' share
    per = charged.exemplar_bytes()
    assert charged.quota() == (charged.budget.total - teacher) // (2 * per) < free.quota()
