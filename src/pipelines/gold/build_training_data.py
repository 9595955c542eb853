"""build_training_data (gold): dataset specs → tokenized, versioned releases in gold/training_datasets/<name>.

Reads the silver inputs pinned to their current Delta versions, builds documents, curates, splits,
tokenizes and packs, then writes the rows of release N (partition `release`, with this build's
`build_id`), the card, plots, tokenizer and manifest, and commits by one MERGE of the manifest row
into gold/training_datasets/_releases. Readers see only committed releases; a build that dies or
loses the race for N leaves nothing visible, and its rows are deleted by a later build.
A build whose inputs (by content), spec, code and tokenizer are unchanged since the latest release
makes no release, unless forced. With no --dataset, builds every spec with `schedule: daily`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
from dataclasses import asdict, dataclass

from delta.exceptions import (
    ConcurrentAppendException,
    ConcurrentDeleteReadException,
    ConcurrentTransactionException,
    ConcurrentWriteException,
    DeltaConcurrentModificationException,
    MetadataChangedException,
)
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType, TimestampType
from tokenizers import Tokenizer

from palindrom import quality
from palindrom.config import PipelineConfig
from palindrom.data import releases
from palindrom.failpoints import failpoint
from palindrom.lake import objects, tables
from palindrom.lake.paths import Lake, TableRef
from palindrom.logging import logger
from palindrom.training import BuildError, LostRace, card, curation, documents, lineage, sequences, tokenization
from palindrom.training.manifest import (
    Code,
    Manifest,
    Mix,
    PinnedInput,
    SplitTokens,
    Stage,
    TokenizerInfo,
    code_identity,
)
from palindrom.training.mixing import plan_mix
from palindrom.training.spec import DatasetSpec, all_specs, load_spec, specs_dir
from palindrom.training.splits import SPLITS
from pipelines.tasks import task_main

RELEASES_SCHEMA = StructType([
    StructField("dataset", StringType(), False),
    StructField("release", IntegerType(), False),
    StructField("build_id", StringType(), False),
    StructField("created_at", TimestampType(), False),
    StructField("fingerprint", StringType(), False),
    StructField("content_digest", StringType(), False),
    StructField("rows", LongType(), False),
    StructField("tokens", LongType(), False),
    StructField("table_version", LongType(), False),  # the dataset table's version holding the rows
    StructField("manifest", StringType(), False),  # the Manifest as JSON
])
# What Delta raises when a concurrent commit wins (they share no base class beyond PySparkException).
COMMIT_CONFLICTS = (ConcurrentAppendException, ConcurrentDeleteReadException, ConcurrentTransactionException,
                    ConcurrentWriteException, DeltaConcurrentModificationException, MetadataChangedException)
HISTOGRAM_BINS = 16
# At most this many training documents teach a new tokenizer (the first in a fixed hash order).
TOKENIZER_CORPUS_DOCUMENTS = 200_000


@dataclass(frozen=True)
class BuildResult:
    dataset: str
    release: int | None  # None: no new release
    detail: str
    manifest: Manifest | None = None


@dataclass(frozen=True)
class Inputs:
    events: DataFrame
    metadata: DataFrame | None
    embeddings: DataFrame | None
    pinned: list[PinnedInput]


def pinned_inputs(lake: Lake, spec: DatasetSpec) -> list[PinnedInput]:
    """The spec's input tables at their present versions (read from their Delta logs)."""
    names = ["silver.events"] + (["silver.media_metadata", "silver.media_embeddings"]
                                 if spec.documents.kind == "multimodal" else [])
    pinned = []
    for name in names:
        ref = lake.table(name)
        version = tables.current_version(ref)
        if version is None:
            raise tables.TableNotFound(ref)
        table_id = tables.table_id(ref)
        pinned.append(PinnedInput(table=name, uri=ref.uri, version=version, table_id=table_id,
                                  digest=hashlib.sha256(f"{table_id}@{version}".encode()).hexdigest()))
    return pinned


def pin_inputs(spark: SparkSession, lake: Lake, spec: DatasetSpec) -> Inputs:
    pinned = pinned_inputs(lake, spec)
    frames = {i.table: tables.read(spark, lake.table(i.table), version=i.version) for i in pinned}
    return Inputs(frames["silver.events"], frames.get("silver.media_metadata"),
                  frames.get("silver.media_embeddings"), pinned)


def candidate_documents(inputs: Inputs, spec: DatasetSpec, build_date: dt.date) -> DataFrame:
    """Every source's documents, dropped ones included (with their reason)."""
    frames = []
    for source in spec.sources:
        events = documents.source_events(inputs.events, source, build_date)
        kind = spec.documents.kind
        if kind == "chat":
            frames.append(documents.chat_documents(events, source.name, spec.documents.drop_negative_feedback))
        elif kind == "text":
            frames.append(documents.text_documents(events, source.name))
        else:
            frames.append(documents.multimodal_documents(events, inputs.metadata, inputs.embeddings,
                                                         spec.embeddings, source.name))
    docs = frames[0]
    for frame in frames[1:]:
        docs = docs.unionByName(frame)
    return docs


def schema_versions(inputs: Inputs, spec: DatasetSpec, build_date: dt.date) -> dict[str, list[int]]:
    seen: dict[str, set[int]] = {}
    for source in spec.sources:
        rows = documents.source_events(inputs.events, source, build_date) \
            .select("event_type", "schema_version").distinct().collect()
        for row in rows:
            seen.setdefault(row["event_type"], set()).add(row["schema_version"])
    return {k: sorted(v) for k, v in sorted(seen.items())}


def release_fingerprint(spec: DatasetSpec, input_digest: str, code: Code,
                        given: tuple[Tokenizer, str, str] | None) -> str:
    """What a release is made of: spec, candidate documents, builder code and the given tokenizer (or
    the spec's tokenizer section, for one trained). A build with the latest release's makes none."""
    parts = (spec.sha256, input_digest, code.sha256,
             tokenization.tokenizer_sha256(given[0]) if given else _section_sha(spec))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _section_sha(spec: DatasetSpec) -> str:
    return hashlib.sha256(spec.tokenizer.model_dump_json().encode()).hexdigest()


def given_tokenizer(spec: DatasetSpec) -> tuple[Tokenizer, str, str] | None:
    """A tokenizer named by the spec (file or hub), with its origin and reference; None when trained."""
    t = spec.tokenizer
    if t.path:
        path = t.path
        if not path.startswith(("package:", "/")):
            path = str(specs_dir() / path)  # relative to the specs folder
        return tokenization.load_tokenizer_file(path), "file", t.path
    if t.hub_id:
        try:
            return Tokenizer.from_pretrained(t.hub_id, revision=t.revision), "hub", f"{t.hub_id}@{t.revision}"
        except Exception as e:  # network or hub errors surface as plain exceptions
            raise tokenization.TokenizerError(f"tokenizer {t.hub_id}@{t.revision} cannot be loaded: {e}") from e
    return None


def train_tokenizer(docs: DataFrame, spec: DatasetSpec) -> Tokenizer:
    """A BPE trained on the train split, fed in a fixed order (a hash of the document id) so the same
    documents give the same vocabulary."""
    train = docs.filter(F.col("split") == "train").orderBy(F.sha2("document_id", 256), "document_id") \
        .limit(TOKENIZER_CORPUS_DOCUMENTS)
    if spec.documents.kind == "chat":
        render = tokenization.chat_renderer(spec.documents.chat_template)
        corpus = ("".join(render(t["role"], t["text"] or "") for t in row["turns"])
                  for row in train.select("turns").toLocalIterator())
    else:
        corpus = (row["text"] for row in train.select("text").toLocalIterator())
    return tokenization.train_bpe(corpus, spec.tokenizer.train.vocab_size)


def date_ranges(spec: DatasetSpec, build_date: dt.date) -> dict[str, tuple[str, str]]:
    """Each source's (first, last) day for this build date, as the manifest keeps them."""
    return {s.name: tuple(d.isoformat() for d in s.dates.resolve(build_date)) for s in spec.sources}


def reusable_input_digest(latest: Manifest | None, inputs: list[PinnedInput], spec: DatasetSpec, code: Code,
                          build_date: dt.date) -> str | None:
    """The latest release's digest of its candidate documents, where nothing that decides them has
    changed since: the same input tables (by id) at the same versions, spec, builder code and date
    ranges make the same candidates (the libraries' versions are not among them, as they are not for
    the tokens either). Digesting them again took about 11 s of a build that ended in "no new
    release". None otherwise: the candidates are digested."""
    if latest is None:
        return None

    def pinned(items: list[PinnedInput]) -> list[tuple[str, str, int]]:
        return [(i.table, i.table_id, i.version) for i in items]

    unchanged = (pinned(latest.inputs) == pinned(inputs) and latest.spec_sha256 == spec.sha256
                 and latest.code.sha256 == code.sha256 and latest.date_ranges == date_ranges(spec, build_date))
    return latest.input_digest if unchanged else None


BUILD_COLUMNS = ("release", "build_id")  # which build of which release wrote a dataset table's row


def orphan_builds(committed: list[releases.Release], written: set[tuple]) -> list[tuple[int, str]]:
    """The (release, build_id) among `written` (a dataset table's BUILD_COLUMNS) of no committed release,
    up to the latest one: builds that died or lost the race for a release number."""
    if not committed:
        return []
    builds = {(r.release, r.manifest.build_id) for r in committed}
    return sorted((release, build_id) for release, build_id in written
                  if release <= committed[-1].release and (release, build_id) not in builds)


def remove_orphans(spark: SparkSession, lake: Lake, name: str, committed: list[releases.Release]) -> None:
    """Delete rows (and files) of builds that died or lost the race for a release number now taken
    (`committed`: the dataset's releases, the latest last). Rows above the latest release may belong
    to a build still running, so they stay. Which builds wrote rows is read from the dataset table's
    Delta log where it tells (tables.distinct_combinations): a Spark query in a fresh process took
    about 7 s of a build with nothing to do."""
    table = lake.training_dataset(name)
    if not committed or not tables.exists(table):
        return
    latest = committed[-1].release
    orphans = orphan_builds(committed, tables.distinct_combinations(spark, table, BUILD_COLUMNS))
    if not orphans:
        return
    builds = sorted({build_id for _, build_id in orphans})
    logger.info("build_training_data: %s: removing rows and files of %d uncommitted build(s): %s", name,
                len(builds), ", ".join(builds))
    tables.delete_where(spark, table, f"release <= {latest} AND " + tables.sql_in("build_id", builds))
    for _, build_id in orphans:
        objects.delete_folder(lake.release_files(name, build_id))


def _token_totals(docs: DataFrame) -> dict[tuple[str, str], int]:
    rows = docs.groupBy("split", "source").agg(F.sum(sequences.token_count()).alias("tokens")).collect()
    return {(r["split"], r["source"]): int(r["tokens"]) for r in rows}


def _length_histogram(docs: DataFrame, length: int) -> dict[str, list[tuple[int, int, int]]]:
    width = max(1, -(-length // (HISTOGRAM_BINS - 1)))
    bins = F.least(F.floor(sequences.token_count() / width), F.lit(HISTOGRAM_BINS - 1)).cast("int")
    rows = docs.groupBy("split", bins.alias("bin")).count().collect()
    out: dict[str, list[tuple[int, int, int]]] = {}
    for split in sorted({r["split"] for r in rows}, key=SPLITS.index):
        counts = {r["bin"]: r["count"] for r in rows if r["split"] == split}
        out[split] = [(b * width, (b + 1) * width, counts.get(b, 0)) for b in range(HISTOGRAM_BINS)]
    return out


def _split_tokens(rows: DataFrame) -> dict[str, dict[str, SplitTokens]]:
    stats = rows.groupBy("split", "source").agg(
        F.count(F.lit(1)).alias("rows"), F.sum("num_tokens").alias("tokens"),
        F.sum(F.aggregate("loss_mask", F.lit(0), lambda acc, m: acc + m.cast("int"))).alias("loss_tokens"),
    ).collect()
    documents = rows.select("split", "source", F.explode("document_ids").alias("document_id")) \
        .groupBy("split", "source").agg(F.count_distinct("document_id").alias("documents")).collect()
    distinct = {(r["split"], r["source"]): r["documents"] for r in documents}
    out: dict[str, dict[str, SplitTokens]] = {}
    for r in sorted(stats, key=lambda r: (SPLITS.index(r["split"]), r["source"])):
        out.setdefault(r["split"], {})[r["source"]] = SplitTokens(
            rows=r["rows"], documents=distinct.get((r["split"], r["source"]), 0), tokens=int(r["tokens"]),
            loss_tokens=int(r["loss_tokens"]))
    return out


@dataclass(frozen=True)
class Build:
    """What a build knows before it writes anything."""

    spec: DatasetSpec
    lake: Lake
    build_date: dt.date
    inputs: Inputs
    given: tuple[Tokenizer, str, str] | None  # the spec's tokenizer file or hub id, loaded
    code: Code
    input_digest: str
    fingerprint: str
    latest: Manifest | None
    release: int
    build_id: str


def build(spark: SparkSession, config: PipelineConfig, spec: DatasetSpec, build_date: dt.date,
          force: bool = False) -> BuildResult:
    lake = Lake(config.storage_root)
    name = spec.name
    inputs = pin_inputs(spark, lake, spec)
    logger.info("build_training_data: %s: inputs %s", name, ", ".join(f"{i.table}@v{i.version}" for i in inputs.pinned))
    given = given_tokenizer(spec)
    code = code_identity()

    committed = releases.list_releases(config, name)
    latest = committed[-1].manifest if committed else None
    # Persisted only once they are to be computed: persisting plans the query (about 6 s in a fresh
    # process), and a build that reuses the latest release's digest may end without computing them.
    candidates = candidate_documents(inputs, spec, build_date)
    input_digest = reusable_input_digest(latest, inputs.pinned, spec, code, build_date)
    if input_digest is None:
        candidates = candidates.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        input_digest = input_digest or sequences.content_digest(candidates, candidates.columns)
        fingerprint = release_fingerprint(spec, input_digest, code, given)
        remove_orphans(spark, lake, name, committed)
        if latest is not None and latest.fingerprint == fingerprint and not force:
            detail = no_new_release(latest)
            logger.info("build_training_data: %s: %s", name, detail)
            return BuildResult(name, None, detail, latest)

        if not candidates.is_cached:
            candidates = candidates.persist(StorageLevel.MEMORY_AND_DISK)
        curated = curation.curate(candidates, spec.curation)
        counts, rewrites = curation.counts_of(curated)
        stages = [Stage(**asdict(s)) for s in curation.report(counts, rewrites, spec.curation)]
        _progress(name)(f"{stages[0].documents_in:,} candidate documents, {stages[-1].documents_out:,} kept "
                        f"after curation")
        if stages[-1].documents_out == 0:
            why = "; ".join(f"{s.stage}: {s.dropped}" for s in stages if s.dropped) or "no documents in the inputs"
            raise BuildError(f"{name}: no documents left after curation ({why}); check the sources' date ranges "
                             f"against the build date {build_date}")

        plan = Build(spec, lake, build_date, inputs, given, code, input_digest, fingerprint, latest,
                     release=(latest.release if latest else 0) + 1,
                     build_id=tables.new_run_id(dt.datetime.now(dt.UTC)))
        logger.info("build_training_data: %s: building release %d (build %s)", name, plan.release, plan.build_id)
        import mlflow

        experiment = lineage.experiment_id(config, name)
        with mlflow.start_run(experiment_id=experiment, run_name=f"{name}-{plan.build_id}") as run:
            mlflow.set_tags({"palindrom.dataset": name, "palindrom.build_id": plan.build_id,
                             "palindrom.release": str(plan.release), "palindrom.status": lineage.BUILDING})
            try:
                manifest = _build_release(spark, plan, curated, stages, run.info.run_id, experiment)
            except BaseException as error:
                mlflow.set_tag("palindrom.status", "lost_race" if isinstance(error, LostRace) else "failed")
                mlflow.set_tag("palindrom.error", str(error)[:5000])
                raise
            mlflow.set_tag("palindrom.status", "committed")
        committed_builds = {r.release: r.manifest.build_id for r in committed} | {plan.release: plan.build_id}
        if abandoned := lineage.close_abandoned_builds(lineage.tracking_uri(config), experiment, committed_builds):
            logger.info("build_training_data: %s: ended the MLflow runs that killed builds %s left open", name,
                        ", ".join(abandoned))
    finally:
        candidates.unpersist()
    return BuildResult(name, plan.release, f"release {plan.release}: {manifest.rows:,} rows, "
                       f"{manifest.total_tokens:,} tokens", manifest)


def _build_release(spark: SparkSession, plan: Build, curated: DataFrame, stages: list[Stage], run_id: str,
                   experiment: str) -> Manifest:
    import mlflow

    spec, lake, name, release, build_id = plan.spec, plan.lake, plan.spec.name, plan.release, plan.build_id
    build_date, inputs = plan.build_date, plan.inputs
    progress = _progress(name)
    kept = curated.filter(curation.kept()).drop("drop_reason", "dropped_by", "rewritten_by")
    kept = sequences.with_splits(kept, spec).persist(StorageLevel.MEMORY_AND_DISK)

    tokenizer, origin, reference, trained_in = choose_tokenizer(plan, kept)
    special = tokenization.special_ids(tokenizer)
    tokenizer_json = tokenizer.to_str()

    tokenized = sequences.tokenize(kept, tokenizer_json, spec.documents.chat_template) \
        .persist(StorageLevel.MEMORY_AND_DISK)
    before_mix = _token_totals(tokenized)
    mix_plan = plan_mix(spec.sources, {s: n for (split, s), n in before_mix.items() if split == "train"})
    mixed = sequences.mix(tokenized, mix_plan)
    after_mix = _token_totals(mixed)
    progress(f"tokenized: {sum(before_mix.values()):,} tokens, {sum(after_mix.values()):,} after mixing; packing")
    rows = sequences.pack(mixed, spec, after_mix, special["eos"], special["pad"])
    histogram = _length_histogram(tokenized, spec.output.sequence_length)

    table = lake.training_dataset(name)
    schema = sequences.row_schema(spec)
    tables.ensure(spark, table, StructType([StructField("release", IntegerType(), False),
                                           StructField("build_id", StringType(), False), *schema.fields]),
                  partition_by=["release"])
    tables.append(rows.select(F.lit(release).alias("release"), F.lit(build_id).alias("build_id"), *schema.fieldNames()),
                  table)
    table_version = tables.current_version(table)
    written = tables.read(spark, table, version=table_version) \
        .filter((F.col("release") == release) & (F.col("build_id") == build_id))
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    quality.enforce(quality.training_release_checks(written, vocab, spec.output.sequence_length, name))
    content_digest = sequences.content_digest(written, schema.fieldNames())
    split_tokens = _split_tokens(written)
    row_count = sum(t.rows for per in split_tokens.values() for t in per.values())
    progress(f"wrote {row_count:,} rows (table version {table_version}); writing the card")
    tokenized.unpersist()
    kept.unpersist()

    files = lake.release_files(name, build_id)
    manifest = Manifest(
        dataset=name, release=release, build_id=build_id, created_at=dt.datetime.now(dt.UTC).isoformat(),
        build_date=build_date.isoformat(), description=spec.description, kind=spec.documents.kind, spec_text=spec.text,
        spec_sha256=spec.sha256, inputs=inputs.pinned, date_ranges=date_ranges(spec, build_date),
        schema_versions=schema_versions(inputs, spec, build_date),
        embeddings={k: v.model_dump() for k, v in spec.embeddings.items()},
        tokenizer=TokenizerInfo(origin=origin, reference=reference, sha256=tokenization.tokenizer_sha256(tokenizer),
                                vocab_size=vocab, section_sha256=_section_sha(spec), trained_in_release=trained_in),
        split_rule=_split_rule(spec), code=plan.code, sequence_length=spec.output.sequence_length,
        packing=spec.output.packing, stages=stages,
        mix=[Mix(**asdict(m)) for m in mix_plan], tokens=split_tokens, length_histogram=histogram,
        row_schema=[(f.name, f.dataType.simpleString()) for f in schema.fields], input_digest=plan.input_digest,
        fingerprint=plan.fingerprint, content_digest=content_digest, rows=row_count,
        mlflow_tracking_uri=mlflow.get_tracking_uri(), mlflow_experiment_id=experiment, mlflow_run_id=run_id,
        files_uri=files,
    )
    artifacts = {"README.md": card.render(manifest).encode(), **card.plots(manifest),
                 "tokenizer.json": tokenizer_json.encode(),
                 "manifest.json": manifest.model_dump_json(indent=2).encode()}
    for file_name, data in artifacts.items():
        objects.write_bytes(f"{files}/{file_name}", data)

    _log_build(manifest, artifacts, table, table_version)
    failpoint("build_training_data.before_commit")
    _commit(spark, lake, manifest, table_version)
    progress(f"committed release {release}")
    return manifest


def choose_tokenizer(plan: Build, kept: DataFrame) -> tuple[Tokenizer, str, str, int | None]:
    """(tokenizer, origin, reference, release that trained it): the spec's file or hub id; else the BPE
    an earlier release of this spec trained, while the spec's tokenizer section is unchanged; else a
    new one trained on this build's train split."""
    spec, latest = plan.spec, plan.latest
    if plan.given is not None:
        return (*plan.given, None)
    reference = f"bpe:{spec.tokenizer.train.vocab_size}"
    if latest is not None and latest.tokenizer.origin == "trained" and \
            latest.tokenizer.section_sha256 == _section_sha(spec):
        _progress(spec.name)(f"reusing the tokenizer trained in release {latest.tokenizer.trained_in_release}")
        stored = objects.read_bytes(f"{latest.files_uri}/tokenizer.json").decode()
        return Tokenizer.from_str(stored), "trained", reference, latest.tokenizer.trained_in_release
    _progress(spec.name)(f"training a byte-level BPE ({spec.tokenizer.train.vocab_size:,} tokens) on the train split")
    return train_tokenizer(kept, spec), "trained", reference, plan.release


def _split_rule(spec: DatasetSpec) -> str:
    s = spec.splits
    key = "user id" if s.group_by == "user" else "conversation id (the document id where there is none)"
    return (f"train {s.train:g} / validation {s.validation:g} / test {s.test:g} by a stable hash of the {key}, "
            f"seed {s.seed}")


def _log_build(manifest: Manifest, artifacts: dict[str, bytes], table: TableRef, table_version: int) -> None:
    """The run's parameters (the spec), metrics (the counts), inputs and output (Delta tables at their
    versions, with explicit digests), tags to find it, and the card, plots, tokenizer and manifest."""
    import tempfile
    from pathlib import Path

    import mlflow
    import yaml

    params = lineage.flat_params({"spec": yaml.safe_load(manifest.spec_text)}) | {
        "spec_sha256": manifest.spec_sha256, "build_date": manifest.build_date,
        "tokenizer": manifest.tokenizer.reference, "code.git_commit": manifest.code.git_commit,
        **{f"input.{i.table}.version": str(i.version) for i in manifest.inputs}}
    mlflow.log_params(params)
    metrics = {"rows": manifest.rows, "tokens": manifest.total_tokens}
    for stage in manifest.stages:
        metrics[f"documents.{stage.stage}.in"] = stage.documents_in
        metrics[f"documents.{stage.stage}.out"] = stage.documents_out
        metrics.update({f"dropped.{stage.stage}.{reason}": n for reason, n in stage.dropped.items()})
    for split, per_source in manifest.tokens.items():
        for source, t in per_source.items():
            metrics.update({f"tokens.{split}.{source}": t.tokens, f"rows.{split}.{source}": t.rows})
    mlflow.log_metrics(metrics)
    for i in manifest.inputs:
        lineage.log_input(lineage.delta_dataset(i.uri, i.version, f"{i.table}@v{i.version}", i.digest),
                          context="source")
    lineage.log_input(lineage.delta_dataset(table.uri, table_version, f"{manifest.dataset}@{manifest.release}",
                                            manifest.content_digest), context="release",
                      tags={"release": str(manifest.release)})
    mlflow.set_tags({"palindrom.content_digest": manifest.content_digest, "palindrom.fingerprint": manifest.fingerprint,
                     "palindrom.card": manifest.card_uri})
    with tempfile.TemporaryDirectory() as folder:
        for file_name, data in artifacts.items():
            (Path(folder) / file_name).write_bytes(data)
        mlflow.log_artifacts(folder, "release")


def _commit(spark: SparkSession, lake: Lake, manifest: Manifest, table_version: int) -> None:
    """The commit point: one MERGE of the manifest row keyed on (dataset, release)."""
    ref = lake.table("gold.training_releases")
    tables.ensure(spark, ref, RELEASES_SCHEMA, partition_by=["dataset"])
    row = spark.createDataFrame([(manifest.dataset, manifest.release, manifest.build_id,
                                  dt.datetime.fromisoformat(manifest.created_at), manifest.fingerprint,
                                  manifest.content_digest, manifest.rows, manifest.total_tokens, table_version,
                                  manifest.model_dump_json())], RELEASES_SCHEMA)
    try:
        tables.insert_new(spark, row, ref, ["dataset", "release"],
                          target_filter=tables.sql_in("t.dataset", [manifest.dataset]))
    except COMMIT_CONFLICTS as e:
        logger.info("build_training_data: %s: concurrent commit: %s", manifest.dataset, str(e).splitlines()[0])
    owner = tables.read(spark, ref).filter((F.col("dataset") == manifest.dataset)
                                           & (F.col("release") == manifest.release)).select("build_id").first()
    if owner is None or owner["build_id"] != manifest.build_id:
        raise LostRace(f"{manifest.dataset}: release {manifest.release} was committed by build "
                       f"{owner['build_id'] if owner else '(none)'} while build {manifest.build_id} ran; nothing of "
                       f"this build is visible (its rows are removed by the next build); rerun to build release "
                       f"{manifest.release + 1}")


def _progress(name: str):
    def say(message: str) -> None:
        logger.info("build_training_data: %s: %s", name, message)

    return say


def build_date_from(args: argparse.Namespace) -> dt.date:
    """`--build-date`, or today (UTC)."""
    return dt.date.fromisoformat(args.build_date) if args.build_date else dt.datetime.now(dt.UTC).date()


def _specs(args: argparse.Namespace) -> list[DatasetSpec]:
    return [load_spec(args.dataset)] if args.dataset else [s for s in all_specs() if s.schedule == "daily"]


def unchanged_release(config: PipelineConfig, spec: DatasetSpec, build_date: dt.date) -> Manifest | None:
    """The dataset's latest release where a build now would make none, decided from Delta logs alone
    (no Spark): its inputs (the same tables at the same versions), spec, code, date ranges and
    tokenizer are the build's, and the dataset table holds no rows of builds that died (their removal
    needs Spark). None otherwise, or where the logs cannot tell."""
    lake, code = Lake(config.storage_root), code_identity()
    committed = releases.list_releases(config, spec.name)
    try:
        pinned = pinned_inputs(lake, spec)
    except tables.TableNotFound:
        return None  # the build fails, saying so
    latest = committed[-1].manifest if committed else None
    digest = reusable_input_digest(latest, pinned, spec, code, build_date)
    if digest is None or latest.fingerprint != release_fingerprint(spec, digest, code, given_tokenizer(spec)):
        return None
    written = tables.logged_distinct_combinations(lake.training_dataset(spec.name), BUILD_COLUMNS)
    return None if written is None or orphan_builds(committed, written) else latest


def no_new_release(latest: Manifest) -> str:
    return (f"no new release: inputs, spec, code and tokenizer are unchanged since release {latest.release} "
            "(use --force to build anyway)")


def up_to_date(config: PipelineConfig, args: argparse.Namespace) -> str | None:
    specs = _specs(args)
    if not specs:
        return "no spec has schedule: daily"
    if args.force:
        return None
    build_date, unchanged = build_date_from(args), []
    for spec in specs:
        latest = unchanged_release(config, spec, build_date)
        if latest is None:
            return None
        unchanged.append(f"{spec.name}: {no_new_release(latest)}")
    return "; ".join(unchanged)


def run(spark: SparkSession, config: PipelineConfig, args: argparse.Namespace) -> list[BuildResult]:
    build_date = build_date_from(args)
    specs = _specs(args)
    if not specs:
        logger.info("build_training_data: no spec has schedule: daily; nothing to build")
    results = []
    for i, spec in enumerate(specs, start=1):
        logger.info("build_training_data: [%d/%d] %s", i, len(specs), spec.name)
        results.append(build(spark, config, spec, build_date, force=args.force))
    for r in results:
        logger.info("build_training_data: %s: %s", r.dataset, r.detail)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="", help="the spec to build (configs/datasets/<name>.yaml); "
                                                      "empty: every spec with schedule: daily")
    parser.add_argument("--force", action="store_true", help="build a release even if nothing changed")
    parser.add_argument("--build-date", default="", help="UTC date relative date ranges resolve against "
                                                         "(default: today)")


def main(argv: list[str] | None = None) -> int:
    return task_main("build_training_data", "gold", run, __doc__, argv, add_arguments,
                     examples=("build_training_data --dataset chat_sft",
                               "build_training_data --dataset pretrain_text --force --build-date 2026-11-27"),
                     up_to_date=up_to_date)


if __name__ == "__main__":
    raise SystemExit(main())
