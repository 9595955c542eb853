from pyspark.sql import functions as F

from palindrom.training import curation
from palindrom.training.spec import ExactDedup, MaxChars, MinChars, NormalizeWhitespace

TEXTS = "document_id string, source string, text string, drop_reason string, dropped_by string"
CHATS = ("document_id string, source string, turns array<struct<role:string,text:string>>, "
         "drop_reason string, dropped_by string")


def texts(spark, *rows):
    return spark.createDataFrame([(f"d{i}", "s", text, reason, "documents" if reason else None)
                                  for i, (text, reason) in enumerate(rows)], TEXTS)


def test_steps_drop_with_reasons_in_order_and_every_document_is_counted(spark_session):
    docs = texts(spark_session, ("  hello   world ", None), ("hello world", None), ("hi", None),
                 ("x" * 50, None), (None, "no_text"))
    steps = (NormalizeWhitespace(step="normalize_whitespace"), MinChars(step="min_chars", min=3),
             MaxChars(step="max_chars", max=40), ExactDedup(step="exact_dedup"))
    curated = curation.curate(docs, steps)
    rows = {r["document_id"]: r for r in curated.collect()}
    assert rows["d0"]["text"] == "hello world"
    assert rows["d0"]["drop_reason"] is None
    assert (rows["d1"]["dropped_by"], rows["d1"]["drop_reason"]) == ("exact_dedup", "duplicate")  # d0 < d1 stays
    assert (rows["d2"]["dropped_by"], rows["d2"]["drop_reason"]) == ("min_chars", "too_short")
    assert (rows["d3"]["dropped_by"], rows["d3"]["drop_reason"]) == ("max_chars", "too_long")
    assert rows["d4"]["dropped_by"] == "documents"  # the builders' drop is kept, untouched

    counts, rewrites = curation.counts_of(curated)
    report = curation.report(counts, rewrites, steps)
    assert [(s.stage, s.documents_in, s.documents_out) for s in report] == [
        ("documents", 5, 4), ("normalize_whitespace", 4, 4), ("min_chars", 4, 3), ("max_chars", 3, 2),
        ("exact_dedup", 2, 1)]
    assert report[0].dropped == {"no_text": 1}
    assert report[1].rewritten == 1
    assert report[4].dropped == {"duplicate": 1}


def test_dedup_keeps_the_smallest_id_whatever_the_partitioning(spark_session):
    docs = texts(spark_session, *[("same", None)] * 6)
    for parts in (1, 4):
        kept = curation.curate(docs.repartition(parts), (ExactDedup(step="exact_dedup"),)) \
            .filter(curation.kept()).select("document_id").collect()
        assert [r[0] for r in kept] == ["d0"]


def test_chat_rules_apply_to_the_turns(spark_session):
    docs = spark_session.createDataFrame([
        ("c0", "s", [("user", "hi  there"), ("assistant", "hello")], None, None),
        ("c1", "s", [("user", "a"), ("assistant", "b")], None, None),
    ], CHATS)
    curated = curation.curate(docs, (NormalizeWhitespace(step="normalize_whitespace"),
                                     MinChars(step="min_chars", min=5)))
    rows = {r["document_id"]: r for r in curated.collect()}
    assert [t["text"] for t in rows["c0"]["turns"]] == ["hi there", "hello"]
    assert rows["c0"]["rewritten_by"] == ["normalize_whitespace"]
    assert rows["c1"]["drop_reason"] == "too_short"  # 2 characters over both turns
    assert curated.filter(F.col("drop_reason").isNull()).count() == 1
