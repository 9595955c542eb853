"""Tokenize, mix and pack on Spark: the same documents give the same rows however Spark splits them."""

from pyspark.sql import functions as F

from palindrom.training import sequences, tokenization
from palindrom.training.mixing import SourceMix
from palindrom.training.spec import DatasetSpec

CORPUS = [f"message {i}: {'lorem ipsum dolor ' * (i % 7)} sit amet" for i in range(120)]
TOKENIZER = tokenization.train_bpe(CORPUS, vocab_size=300)
SPECIAL = tokenization.special_ids(TOKENIZER)
SPEC_TEXT = {
    "name": "t", "description": "d", "sources": [{"name": "a", "dates": {"from": "-30d"}},
                                                 {"name": "b", "dates": {"from": "-30d"}, "max_upsample": 3}],
    "documents": {"kind": "text"}, "tokenizer": {"train": {"vocab_size": 300}},
    "output": {"sequence_length": 32, "packing": "concat"}, "splits": {"train": 0.8, "validation": 0.2},
}


def text_docs(spark):
    rows = [(f"doc-{i:03d}", "a" if i % 4 else "b", f"user-{i % 9}", None, text) for i, text in enumerate(CORPUS)]
    return spark.createDataFrame(rows, "document_id string, source string, user_id string, "
                                       "conversation_id string, text string")


def build_rows(docs, spec, plan):
    tokenized = sequences.tokenize(sequences.with_splits(docs, spec), TOKENIZER.to_str(), None)
    mixed = sequences.mix(tokenized, plan)
    totals = {(r["split"], r["source"]): r["n"] for r in
              mixed.groupBy("split", "source").agg(F.sum(sequences.token_count()).alias("n")).collect()}
    return sequences.pack(mixed, spec, totals, SPECIAL["eos"], SPECIAL["pad"])


def test_packing_ignores_partitioning_and_keeps_every_token(spark_session, monkeypatch):
    monkeypatch.setattr(sequences, "TOKENS_PER_BUCKET", 200)  # many buckets even for this little text
    spec = DatasetSpec.model_validate(SPEC_TEXT)
    plan = [SourceMix("a", 0.5, 0, 1.0, False, 0.5), SourceMix("b", 0.5, 0, 2.5, False, 0.5)]
    docs = text_docs(spark_session)
    one = build_rows(docs.repartition(1), spec, plan)
    many = build_rows(docs.repartition(7), spec, plan)
    columns = sequences.row_schema(spec).fieldNames()
    assert sequences.content_digest(one, columns) == sequences.content_digest(many, columns)
    assert sorted(r["example_id"] for r in one.collect()) == sorted(r["example_id"] for r in many.collect())

    rows = one.collect()
    assert all(len(r["input_ids"]) == 32 and len(r["document_index"]) == 32 for r in rows)
    assert {r["source"] for r in rows} == {"a", "b"}  # a sequence holds one source's documents
    # Every document's tokens are in the rows, EOS-terminated: train copies of b 2 or 3 times.
    tokens = {}
    for r in sorted(rows, key=lambda r: r["example_id"]):
        for i in r["document_index"]:
            if i >= 0:
                tokens[r["document_ids"][i]] = tokens.get(r["document_ids"][i], 0) + 1
    split_of = {r["document_id"]: r["split"] for r in sequences.with_splits(docs, spec).collect()}
    for i, text in enumerate(CORPUS):
        doc, source = f"doc-{i:03d}", "a" if i % 4 else "b"
        once = len(TOKENIZER.encode(text, add_special_tokens=False).ids) + 1
        copies = tokens[doc] // once
        assert tokens[doc] % once == 0
        assert copies == 1 if (source == "a" or split_of[doc] != "train") else copies in (2, 3)


def test_none_packing_keeps_one_example_per_document_with_its_embedding(spark_session):
    spec = DatasetSpec.model_validate({**SPEC_TEXT, "output": {"sequence_length": 8, "packing": "none"},
                                       "documents": {"kind": "multimodal"},
                                       "embeddings": {"image": {"model_name": "m", "model_revision": "r"}}})
    docs = text_docs(spark_session).limit(10).withColumn("media_type", F.lit("image")) \
        .withColumn("sha256", F.sha2("document_id", 256)).withColumn("vector", F.array(F.lit(0.5), F.lit(-1.0)))
    rows = build_rows(docs, spec, [SourceMix("a", 1, 0, 1.0, False, 1), SourceMix("b", 1, 0, 1.0, False, 1)]) \
        .collect()
    assert len(rows) == 10
    for r in rows:
        assert r["document_ids"] == [r["example_id"]]
        assert r["embedding"] == [0.5, -1.0]
        assert len(r["input_ids"]) == 8
        assert r["truncated"] == (r["num_tokens"] == 8 and r["input_ids"][-1] != SPECIAL["eos"])
