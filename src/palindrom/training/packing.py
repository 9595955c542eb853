"""From tokenized documents to fixed-length training sequences, vectorised with numpy.

Documents come as Arrow list arrays do: `offsets` (n + 1 increasing positions into the flat `ids`
and `mask`), so a batch of any size is packed without a Python loop over its tokens.

`concat`: documents joined with EOS, cut every `length` tokens; each token carries the index of its
document within the sequence (`document_index`), so a trainer can stop attention from crossing
documents; the last, partial sequence is padded (pad tokens: index -1, loss mask 0). A document
that continues from the previous sequence is index 0 of the next. `none`: one example per
document, truncated or padded to `length`. The loss mask is 1 on tokens to learn from (for chat,
the assistant's tokens; always the EOS that ends a document). Empty documents make no tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Packed:
    input_ids: np.ndarray  # (rows, length) int32
    loss_mask: np.ndarray  # (rows, length) int8
    document_index: np.ndarray  # (rows, length) int32, -1 on padding
    first_document: np.ndarray  # (rows,) index of the row's first document among those given
    last_document: np.ndarray  # (rows,) index of its last one
    num_tokens: np.ndarray  # (rows,) tokens that are not padding
    truncated: np.ndarray  # (rows,) bool: the document did not fit (packing `none` only)

    def __len__(self) -> int:
        return len(self.input_ids)


def _lengths(offsets: np.ndarray) -> np.ndarray:
    return np.diff(np.asarray(offsets, dtype=np.int64))


def pack_concat(offsets, ids, mask, length: int, eos_id: int, pad_id: int) -> Packed:
    """Pack the documents in the order given (the caller fixes it, so the result never depends on
    where Spark split its partitions)."""
    lengths = _lengths(offsets)
    kept = np.flatnonzero(lengths > 0)
    with_eos = lengths[kept] + 1
    total = int(with_eos.sum())
    rows = -(-total // length)
    size = rows * length
    flat_ids = np.full(size, pad_id, dtype=np.int32)
    flat_mask = np.zeros(size, dtype=np.int8)
    ordinal = np.full(size, -1, dtype=np.int64)

    is_eos = np.zeros(total, dtype=bool)
    is_eos[np.cumsum(with_eos) - 1] = True
    offsets = np.asarray(offsets, dtype=np.int64)
    body = slice(offsets[0], offsets[-1])  # Arrow offsets are contiguous: empty documents add nothing
    tokens = flat_ids[:total]
    tokens[~is_eos] = np.asarray(ids)[body]
    tokens[is_eos] = eos_id
    learn = flat_mask[:total]
    learn[~is_eos] = np.asarray(mask)[body]
    learn[is_eos] = 1
    ordinal[:total] = np.repeat(np.arange(len(kept)), with_eos)

    ordinal = ordinal.reshape(rows, length)
    first = ordinal[:, 0]
    last = ordinal.max(axis=1)
    index = np.where(ordinal >= 0, ordinal - first[:, None], -1).astype(np.int32)
    return Packed(flat_ids.reshape(rows, length), flat_mask.reshape(rows, length), index,
                  kept[first], kept[last], (ordinal >= 0).sum(axis=1), np.zeros(rows, dtype=bool))


def pack_none(offsets, ids, mask, length: int, eos_id: int, pad_id: int) -> Packed:
    """One row per non-empty document: the document and EOS, truncated or padded to `length`."""
    lengths = _lengths(offsets)
    kept = np.flatnonzero(lengths > 0)
    rows = len(kept)
    out_ids = np.full((rows, length), pad_id, dtype=np.int32)
    out_mask = np.zeros((rows, length), dtype=np.int8)
    starts = np.asarray(offsets, dtype=np.int64)[:-1]
    ids, mask = np.asarray(ids), np.asarray(mask)
    n = np.minimum(lengths[kept] + 1, length)
    for row, (doc, take) in enumerate(zip(kept, n, strict=True)):
        body = min(int(lengths[doc]), int(take))
        out_ids[row, :body] = ids[starts[doc]:starts[doc] + body]
        out_mask[row, :body] = mask[starts[doc]:starts[doc] + body]
        if take > body:  # room for the EOS
            out_ids[row, body] = eos_id
            out_mask[row, body] = 1
    index = np.where(np.arange(length)[None, :] < n[:, None], 0, -1).astype(np.int32)
    return Packed(out_ids, out_mask, index, kept, kept, n, lengths[kept] + 1 > length)
