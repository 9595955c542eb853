import pytest

from palindrom.training.packing import Document, pack_concat, pack_none

EOS, PAD = 2, 0


def doc(name, n, start=10, mask=1):
    return Document(name, list(range(start, start + n)), [mask] * n)


def test_concat_cuts_fixed_length_sequences_with_document_boundaries():
    out = list(pack_concat([doc("a", 3), doc("b", 5, 20), doc("c", 1, 30)], length=4, eos_id=EOS, pad_id=PAD))
    # a: 10 11 12 EOS | b: 20 21 22 23 | 24 EOS, c: 30 EOS
    assert [e.input_ids for e in out] == [[10, 11, 12, EOS], [20, 21, 22, 23], [24, EOS, 30, EOS]]
    assert [e.document_index for e in out] == [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 1, 1]]
    assert [e.document_ids for e in out] == [["a"], ["b"], ["b", "c"]]
    assert all(len(e.input_ids) == len(e.loss_mask) == len(e.document_index) == 4 for e in out)


def test_a_document_of_exactly_the_length_minus_eos_fills_one_sequence():
    out = list(pack_concat([doc("a", 7)], length=8, eos_id=EOS, pad_id=PAD))
    assert len(out) == 1
    assert out[0].input_ids[-1] == EOS
    assert -1 not in out[0].document_index


def test_a_document_of_exactly_the_length_spills_its_eos():
    out = list(pack_concat([doc("a", 8)], length=8, eos_id=EOS, pad_id=PAD))
    assert [e.input_ids for e in out] == [list(range(10, 18)), [EOS] + [PAD] * 7]
    assert out[1].document_index == [0] + [-1] * 7
    assert out[1].loss_mask == [1] + [0] * 7


def test_a_long_document_spans_sequences_and_nothing_is_lost():
    out = list(pack_concat([doc("long", 25)], length=10, eos_id=EOS, pad_id=PAD))
    assert len(out) == 3
    tokens = [t for e in out for t, i in zip(e.input_ids, e.document_index, strict=True) if i >= 0]
    assert tokens == [*range(10, 35), EOS]


def test_empty_documents_are_skipped_and_masks_carry_through():
    out = list(pack_concat([doc("empty", 0), doc("a", 2, mask=0)], length=4, eos_id=EOS, pad_id=PAD))
    assert len(out) == 1
    assert out[0].document_ids == ["a"]
    assert out[0].loss_mask == [0, 0, 1, 0]
    assert list(pack_concat([], length=4, eos_id=EOS, pad_id=PAD)) == []


@pytest.mark.parametrize(("n", "ids", "truncated"), [
    (2, [10, 11, EOS, PAD, PAD], False),
    (4, [10, 11, 12, 13, EOS], False),
    (6, [10, 11, 12, 13, 14], True),
])
def test_none_pads_or_truncates(n, ids, truncated):
    example = pack_none(doc("a", n), length=5, eos_id=EOS, pad_id=PAD)
    assert example.input_ids == ids
    assert example.truncated is truncated
    assert example.document_index == [0 if t != PAD else -1 for t in ids]
    assert pack_none(doc("e", 0), length=5, eos_id=EOS, pad_id=PAD) is None
