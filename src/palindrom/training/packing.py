"""From tokenized documents to fixed-length training sequences.

`concat`: documents joined with EOS, cut every `length` tokens; each token carries the index of
its document within the sequence (`document_index`), so a trainer can stop attention from crossing
documents; the last, partial sequence is padded (pad tokens: index -1, loss mask 0). `none`: one
example per document, truncated or padded to `length`. The loss mask is 1 on tokens to learn from
(for chat, the assistant's tokens and the EOS that ends the conversation).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Document:
    document_id: str
    input_ids: Sequence[int]
    loss_mask: Sequence[int]


@dataclass(frozen=True)
class Example:
    input_ids: list[int]
    loss_mask: list[int]
    document_index: list[int]  # -1 on padding
    document_ids: list[str]  # the documents (in order) that have tokens in this sequence
    truncated: bool = False


def pack_concat(documents: Iterable[Document], length: int, eos_id: int, pad_id: int) -> Iterator[Example]:
    """Pack in the order given (the caller fixes the order, so the result never depends on Spark's
    partitioning); empty documents are skipped."""
    ids: list[int] = []
    mask: list[int] = []
    index: list[int] = []
    docs: list[str] = []

    def flush(n: int) -> Example:
        example = Example(ids[:n] + [pad_id] * (length - n), mask[:n] + [0] * (length - n),
                          index[:n] + [-1] * (length - n), list(docs))
        del ids[:n], mask[:n], index[:n]
        # The document that continues into the next sequence stays listed there, as index 0.
        carry = docs[-1] if ids else None
        docs.clear()
        if carry is not None:
            docs.append(carry)
            index[:] = [0] * len(index)
        return example

    for doc in documents:
        if not doc.input_ids:
            continue
        docs.append(doc.document_id)
        ids.extend([*doc.input_ids, eos_id])
        mask.extend([*doc.loss_mask, 1])
        index.extend([len(docs) - 1] * (len(doc.input_ids) + 1))
        while len(ids) >= length:
            yield flush(length)
    if ids:
        yield flush(len(ids))


def pack_none(document: Document, length: int, eos_id: int, pad_id: int) -> Example | None:
    """One example: the document and EOS, truncated or padded to `length` (None for an empty one)."""
    if not document.input_ids:
        return None
    ids = [*document.input_ids, eos_id]
    mask = [*document.loss_mask, 1]
    truncated = len(ids) > length
    ids, mask = ids[:length], mask[:length]
    n = len(ids)
    return Example(ids + [pad_id] * (length - n), mask + [0] * (length - n), [0] * n + [-1] * (length - n),
                   [document.document_id], truncated)
