import numpy as np
import pytest

from palindrom.training.packing import pack_concat, pack_none

EOS, PAD = 2, 0


def docs(*sizes, start=10, mask=1):
    """Flat arrays of documents of these sizes: document k's tokens are start + 10k, start + 10k + 1, …"""
    ids = [t for k, n in enumerate(sizes) for t in range(start + 10 * k, start + 10 * k + n)]
    offsets = np.cumsum([0, *sizes])
    return offsets, np.array(ids, dtype=np.int32), np.full(len(ids), mask, dtype=np.int8)


def test_concat_cuts_fixed_length_sequences_with_document_boundaries():
    out = pack_concat(*docs(3, 5, 1), length=4, eos_id=EOS, pad_id=PAD)
    # a: 10 11 12 EOS | b: 20 21 22 23 | 24 EOS, c: 30 EOS
    assert out.input_ids.tolist() == [[10, 11, 12, EOS], [20, 21, 22, 23], [24, EOS, 30, EOS]]
    assert out.document_index.tolist() == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]
    assert list(zip(out.first_document.tolist(), out.last_document.tolist(), strict=True)) == [(0, 0), (1, 1), (1, 2)]
    assert out.num_tokens.tolist() == [4, 4, 4]
    assert out.input_ids.shape == out.loss_mask.shape == out.document_index.shape == (3, 4)


def test_a_document_of_exactly_the_length_minus_eos_fills_one_sequence():
    out = pack_concat(*docs(7), length=8, eos_id=EOS, pad_id=PAD)
    assert len(out) == 1
    assert out.input_ids[0, -1] == EOS
    assert -1 not in out.document_index


def test_a_document_of_exactly_the_length_spills_its_eos():
    out = pack_concat(*docs(8), length=8, eos_id=EOS, pad_id=PAD)
    assert out.input_ids.tolist() == [list(range(10, 18)), [EOS] + [PAD] * 7]
    assert out.document_index[1].tolist() == [0] + [-1] * 7
    assert out.loss_mask[1].tolist() == [1] + [0] * 7
    assert out.num_tokens.tolist() == [8, 1]


def test_a_long_document_spans_sequences_and_nothing_is_lost():
    out = pack_concat(*docs(25), length=10, eos_id=EOS, pad_id=PAD)
    assert len(out) == 3
    assert out.input_ids[out.document_index >= 0].tolist() == [*range(10, 35), EOS]


def test_empty_documents_are_skipped_and_masks_carry_through():
    out = pack_concat(*docs(0, 2, mask=0), length=4, eos_id=EOS, pad_id=PAD)
    assert len(out) == 1
    assert (out.first_document[0], out.last_document[0]) == (1, 1)  # the empty document 0 made nothing
    assert out.loss_mask.tolist() == [[0, 0, 1, 0]]
    assert len(pack_concat(*docs(), length=4, eos_id=EOS, pad_id=PAD)) == 0
    assert len(pack_concat(*docs(0, 0), length=4, eos_id=EOS, pad_id=PAD)) == 0


@pytest.mark.parametrize(("n", "ids", "truncated"), [
    (2, [10, 11, EOS, PAD, PAD], False),
    (4, [10, 11, 12, 13, EOS], False),
    (5, [10, 11, 12, 13, 14], True),
    (6, [10, 11, 12, 13, 14], True),
])
def test_none_pads_or_truncates(n, ids, truncated):
    out = pack_none(*docs(n), length=5, eos_id=EOS, pad_id=PAD)
    assert out.input_ids.tolist() == [ids]
    assert out.truncated.tolist() == [truncated]
    assert out.document_index.tolist() == [[0 if t != PAD else -1 for t in ids]]
    assert out.num_tokens.tolist() == [sum(t != PAD for t in ids)]


def test_none_skips_empty_documents():
    out = pack_none(*docs(0, 3, 0), length=5, eos_id=EOS, pad_id=PAD)
    assert out.first_document.tolist() == [1]
    assert out.input_ids.tolist() == [[20, 21, 22, EOS, PAD]]
