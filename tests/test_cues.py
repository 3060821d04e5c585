"""CueStore: the charged bytes are the serialized bytes, eviction keeps priority order, and a
corrupted cue is caught with its task and index."""

import numpy as np
import pytest

from braincl.memory.cues import CUE_HEADER, TASK_HEADER, CueCorrupted, CueStore


def store_with(tasks=((0, [0, 0, 1, 1, 1]), (1, [2, 3, 3]))):
    s = CueStore()
    for t, labels in tasks:
        s.add(t, [bytes([t, i]) * (i + 2) for i in range(len(labels))], labels, (2, 2))
    return s


def test_nbytes_is_the_serialized_length():
    s = store_with()
    assert s.nbytes() == len(s.serialize())
    payload = sum(len(x) for x in s.strings)
    assert s.nbytes() == 2 * TASK_HEADER.size + len(s) * CUE_HEADER.size + payload
    assert CUE_HEADER.size == 4 and TASK_HEADER.size == 10  # label, length; no checksum in the charge
    assert CueStore().nbytes() == 0
    assert s.integrity_nbytes() == 4 * len(s) == len(s.serialize(integrity=True)) - s.nbytes()


@pytest.mark.parametrize("integrity", [False, True])
def test_the_serialized_form_reads_back_to_the_same_cues(integrity):
    s = store_with()
    back = CueStore.deserialize(s.serialize(integrity), integrity)
    assert back.strings == s.strings and back.shapes == s.shapes
    assert back.labels.tolist() == s.labels.tolist() and back.tasks.tolist() == s.tasks.tolist()
    assert back.crcs.tolist() == s.crcs.tolist()
    if integrity:
        data = bytearray(s.serialize(True))
        data[-1] ^= 0xFF  # the last cue's last byte
        with pytest.raises(CueCorrupted):
            CueStore.deserialize(bytes(data), True)


def test_reduce_per_class_keeps_the_first_cues_of_each_class():
    s = store_with()
    first = {c: [s.strings[i] for i in np.flatnonzero(s.labels == c)][:1] for c in s.classes()}
    s.reduce_per_class(1)
    assert s.per_class_count() == {0: 1, 1: 1, 2: 1, 3: 1}
    assert all([s.strings[i] for i in np.flatnonzero(s.labels == c)] == first[c] for c in first)
    assert s.nbytes() == len(s.serialize())
    s.keep(np.flatnonzero(s.tasks == 0))
    assert s.task_ids() == [0] and list(s.shapes) == [0]


def test_nbytes_if_kept_matches_keeping():
    s = store_with()
    idx = s.first_per_class(2)
    predicted = s.nbytes_if_kept(idx)
    s.keep(idx)
    assert predicted == s.nbytes()


def test_corrupted_cue_names_task_and_index():
    s = store_with()
    s.strings[6] = bytes([s.strings[6][0] ^ 0xFF]) + s.strings[6][1:]  # task 1 (index 1), its cue 1
    s.verified(range(6))  # the untouched ones still verify
    with pytest.raises(CueCorrupted, match=r"cue 6 \(task 2, cue 1 of that task"):
        s.verified([6])


def test_bad_input_is_rejected():
    s = store_with()
    with pytest.raises(ValueError, match="latent shape"):
        s.add(0, [b"ab"], [0], (3, 3))
    with pytest.raises(ValueError, match="labels"):
        s.add(2, [b"ab"], [0, 1], (2, 2))
    with pytest.raises(ValueError, match="length field"):
        s.add(2, [b"x" * 70000], [0], (2, 2))


def _flip(store, i, at=0):
    s = bytearray(store.strings[i])
    s[at] ^= 0x01
    store.strings[i] = bytes(s)


def test_extend_carries_the_crc_and_checks_the_source():
    src = store_with()
    dst = CueStore()
    dst.extend(src, [6, 0, 2])
    assert sorted(dst.crcs.tolist()) == sorted(src.crcs[[0, 2, 6]].tolist())
    _flip(src, 3)
    with pytest.raises(CueCorrupted, match=r"cue 3 \(task 1, cue 3 of that task"):
        CueStore().extend(src)  # the damaged bytes never get a fresh checksum of their own
    _flip(dst, 1, at=-1)
    with pytest.raises(CueCorrupted):
        CueStore().extend(dst)


def test_keep_and_pickle_carry_the_crc_and_the_source_is_named():
    import pickle

    s = store_with()
    s.keep([1, 4, 6])
    back = pickle.loads(pickle.dumps(s))
    assert back.crcs.tolist() == s.crcs.tolist()
    back.source = "run/checkpoint.pt"
    _flip(back, 2)
    with pytest.raises(CueCorrupted, match=r"cue 2 \(task 2, cue 0 of that task.*loaded from run/checkpoint.pt"):
        back.verify_all()


def test_recall_checks_every_cue():
    s = store_with()
    _flip(s, 6)

    class Decoder:
        def recall(self, strings, shape, batch_size, device):
            import torch

            assert all(isinstance(x, bytes) for x in strings)
            if strings != [bytes([0, i]) * (i + 2) for i in range(len(strings))]:
                raise AssertionError("a corrupted cue reached the decoder")
            return torch.zeros((len(strings), 1, *shape), dtype=torch.uint8)

    with pytest.raises(CueCorrupted, match=r"cue 6 \(task 2, cue 1 of that task"):
        s.recall([Decoder(), Decoder()])


def test_find_stores_walks_a_learners_state():
    from braincl.memory.cues import find_stores

    class Learner:
        def __init__(self):
            self.ltm = store_with()
            self.extra = {"wm": [CueStore()]}
            self.other = 3

    learner = Learner()
    found = find_stores(learner)
    assert len(found) == 2 and found[0] is learner.ltm
