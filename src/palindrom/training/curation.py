"""Curation: the spec's ordered steps, each a DataFrame → DataFrame transformation that drops
documents (setting `drop_reason` and `dropped_by` on rows still kept) or rewrites their text.

Dropped rows stay in the frame until the end, so one aggregation counts what every stage removed
and why (`report`); nothing leaves the build uncounted. A chat document's text is its turns': a
rewrite applies to each turn, a length rule to their total, deduplication to the whole sequence.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from palindrom.training.documents import STAGE
from palindrom.training.spec import CurationStep, ExactDedup, MaxChars, MinChars, NormalizeWhitespace


def kept() -> Column:
    """Rows no stage has dropped."""
    return F.col("drop_reason").isNull()


def _is_chat(docs: DataFrame) -> bool:
    return "turns" in docs.columns


def _full_text(docs: DataFrame) -> Column:
    if _is_chat(docs):
        return F.array_join(F.transform("turns", lambda t: F.concat_ws(": ", t["role"], t["text"])), "\n")
    return F.col("text")


def _chars(docs: DataFrame) -> Column:
    if _is_chat(docs):
        return F.aggregate("turns", F.lit(0), lambda total, t: total + F.coalesce(F.length(t["text"]), F.lit(0)))
    return F.coalesce(F.length("text"), F.lit(0))


def _drop(docs: DataFrame, condition: Column, reason: str, step: str) -> DataFrame:
    hit = kept() & condition
    return docs.withColumn("dropped_by", F.when(hit, F.lit(step)).otherwise(F.col("dropped_by"))) \
        .withColumn("drop_reason", F.when(hit, F.lit(reason)).otherwise(F.col("drop_reason")))


def _rewrite(docs: DataFrame, change: Callable[[Column], Column], step: str) -> DataFrame:
    before = _full_text(docs)
    if _is_chat(docs):
        docs = docs.withColumn("_before", before).withColumn(
            "turns", F.transform("turns", lambda t: t.withField("text", change(t["text"]))))
    else:
        docs = docs.withColumn("_before", before).withColumn("text", change(F.col("text")))
    changed = kept() & ~F.col("_before").eqNullSafe(_full_text(docs))
    return docs.withColumn("rewritten_by", F.when(changed, F.array_append("rewritten_by", F.lit(step)))
                           .otherwise(F.col("rewritten_by"))).drop("_before")


def normalize_whitespace(docs: DataFrame, step: NormalizeWhitespace) -> DataFrame:
    return _rewrite(docs, lambda text: F.trim(F.regexp_replace(text, r"\s+", " ")), step.step)


def min_chars(docs: DataFrame, step: MinChars) -> DataFrame:
    return _drop(docs, _chars(docs) < step.min, "too_short", step.step)


def max_chars(docs: DataFrame, step: MaxChars) -> DataFrame:
    return _drop(docs, _chars(docs) > step.max, "too_long", step.step)


def exact_dedup(docs: DataFrame, step: ExactDedup) -> DataFrame:
    # Only kept documents compete; among equal texts the smallest document_id stays, whatever the order.
    key = F.when(kept(), F.sha2(_full_text(docs), 256))
    rank = F.row_number().over(Window.partitionBy(key).orderBy("document_id"))
    return _drop(docs.withColumn("_rank", rank), F.col("_rank") > 1, "duplicate", step.step).drop("_rank")


STEPS: dict[type, Callable[[DataFrame, CurationStep], DataFrame]] = {
    NormalizeWhitespace: normalize_whitespace,
    MinChars: min_chars,
    MaxChars: max_chars,
    ExactDedup: exact_dedup,
}


def curate(docs: DataFrame, steps: Sequence[CurationStep]) -> DataFrame:
    """Apply the steps in order. Rows dropped earlier (by the document builders too) pass untouched."""
    docs = docs.withColumn("rewritten_by", F.array().cast("array<string>"))
    for step in steps:
        docs = STEPS[type(step)](docs, step)
    return docs


@dataclass(frozen=True)
class StageCount:
    stage: str
    documents_in: int
    documents_out: int
    dropped: dict[str, int] = field(default_factory=dict)  # reason → documents
    rewritten: int = 0


def report(counts: Sequence[tuple[str | None, str | None, int]], rewrites: dict[str, int],
           steps: Sequence[CurationStep]) -> list[StageCount]:
    """Per stage (the document builders, then each step in order): documents in and out, drops by
    reason, rewrites. `counts` are (dropped_by, drop_reason, documents) over all candidates."""
    total = sum(n for _, _, n in counts)
    stages = [STAGE, *(s.step for s in steps)]
    out = []
    remaining = total
    for stage in stages:
        dropped = {reason: n for by, reason, n in counts if by == stage}
        left = remaining - sum(dropped.values())
        out.append(StageCount(stage, remaining, left, dict(sorted(dropped.items())), rewrites.get(stage, 0)))
        remaining = left
    return out


def counts_of(docs: DataFrame) -> tuple[list[tuple[str | None, str | None, int]], dict[str, int]]:
    """(dropped_by, drop_reason, documents) over all candidates, and documents rewritten per step."""
    drops = docs.groupBy("dropped_by", "drop_reason").count().collect()
    rewrites = docs.select(F.explode("rewritten_by").alias("step")).groupBy("step").count().collect()
    return [(r["dropped_by"], r["drop_reason"], r["count"]) for r in drops], {r["step"]: r["count"] for r in rewrites}
