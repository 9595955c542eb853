"""The dataset card of a release: a README.md in the Hugging Face dataset-card format (YAML metadata
that `huggingface_hub.DatasetCard` parses, then prose) and its two plots.

Built from the manifest alone, which holds counts, names, versions and hashes but never a text, a
user id or any other row content: no raw personal data can reach the card.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from palindrom.training.manifest import Manifest

SEQUENCE_LENGTHS_PNG = "sequence_lengths.png"
SOURCE_MIX_PNG = "source_mix.png"
TASKS = {"chat": "text-generation", "text": "text-generation", "multimodal": "image-to-text"}


def _size_category(rows: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                        (10_000_000, "1M<n<10M")):
        if rows < limit:
            return name
    return "n>10M"


def render(manifest: Manifest) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        pretty_name=f"{manifest.dataset} (release {manifest.release})",
        license="other", language=["en"], size_categories=[_size_category(manifest.rows)],
        task_categories=[TASKS[manifest.kind]], tags=["palindrom", "tokenized", manifest.packing],
        palindrom={"dataset": manifest.dataset, "release": manifest.release, "build_id": manifest.build_id,
                   "content_digest": manifest.content_digest, "spec_sha256": manifest.spec_sha256,
                   "tokenizer_sha256": manifest.tokenizer.sha256, "mlflow_run_id": manifest.mlflow_run_id},
    )
    card = DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{_prose(manifest)}")
    DatasetCard(str(card))  # parses back, or raises: a card that Hugging Face cannot read is never written
    return str(card)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _prose(m: Manifest) -> str:
    kind = m.kind
    inputs = _table(["table", "Delta version", "location"], [(i.table, i.version, f"`{i.uri}`") for i in m.inputs])
    dates = _table(["source", "from", "to"], [(s, a, b) for s, (a, b) in m.date_ranges.items()])
    mix = _table(["source", "target share", "train tokens before mixing", "repeated", "achieved share"],
                 [(x.source, f"{x.target_share:.1%}", f"{x.tokens:,}",
                   f"{x.repeat:.2f}x" + (" (capped)" if x.capped else ""), f"{x.achieved_share:.1%}") for x in m.mix])
    capped = [x.source for x in m.mix if x.capped]
    empty = [x.source for x in m.mix if x.tokens == 0]
    notes = []
    if capped:
        notes.append(f"Up-sampling of {', '.join(capped)} reached the cap set in the spec (`max_upsample`): "
                     "the achieved share is below the target.")
    if empty:
        notes.append(f"Source(s) {', '.join(empty)} had no training tokens and are not in the mix.")
    repeated = [x.source for x in m.mix if x.repeat > 1]
    if repeated:
        notes.append(f"Documents of {', '.join(repeated)} appear more than once in the train split "
                     "(up-sampled by repetition).")
    stages = _table(["stage", "documents in", "documents out", "dropped (reason: documents)", "rewritten"],
                    [(s.stage, f"{s.documents_in:,}", f"{s.documents_out:,}",
                      ", ".join(f"{r}: {n:,}" for r, n in s.dropped.items()) or "none", f"{s.rewritten:,}")
                     for s in m.stages])
    tokens = _table(["split", "source", "rows", "documents", "tokens", "loss tokens"],
                    [(split, source, f"{t.rows:,}", f"{t.documents:,}", f"{t.tokens:,}", f"{t.loss_tokens:,}")
                     for split, per_source in m.tokens.items() for source, t in per_source.items()])
    schema = _table(["column", "type"], [(c, f"`{t}`") for c, t in m.row_schema])
    embeddings = ", ".join(f"{k}: `{v['model_name']}` @ `{v['model_revision']}`" for k, v in m.embeddings.items())
    tok = m.tokenizer
    tokenizer = (f"trained byte-level BPE ({tok.reference}) in release {tok.trained_in_release}"
                 if tok.origin == "trained" else f"{tok.origin} `{tok.reference}`")
    packing = ("documents joined with EOS and cut into sequences of exactly "
               f"{m.sequence_length} tokens; `document_index` marks each token's document within its sequence "
               "(-1 on padding), so attention can be kept within documents"
               if m.packing == "concat" else
               f"one example per document, truncated or padded to {m.sequence_length} tokens (`truncated` says which)")
    return f"""# {m.dataset}, release {m.release}

{m.description}

Built on {m.created_at} (build date {m.build_date}) by build `{m.build_id}`. Rows: {m.rows:,};
tokens: {m.total_tokens:,}. Content digest: `{m.content_digest}`.

## Intended use

Training and evaluating Palindrom's language models ({kind} data). The rows are tokenized with the
tokenizer shipped beside this card (`tokenizer.json`); `loss_mask` is 1 on the tokens to learn from
{"(the assistant's turns)" if kind == "chat" else "(every real token)"}. Not for any use outside Palindrom.

## Sources

{inputs}

Dates (UTC, inclusive):

{dates}

{"Embeddings: " + embeddings if embeddings else ""}

### Mix (shares of train tokens)

{mix}

{chr(10).join("- " + n for n in notes)}

![source mix]({SOURCE_MIX_PNG})

## Processing

Every candidate document is accounted for: each stage lists what it removed and why.

{stages}

Then: splits {m.split_rule} (no group is in two splits);
tokenized with {tokenizer} (vocabulary {tok.vocab_size:,}, SHA-256 `{tok.sha256}`), and packed:
{packing}.

## Token statistics

{tokens}

![document lengths in tokens]({SEQUENCE_LENGTHS_PNG})

## Row schema

{schema}

## Lineage

- spec `configs/datasets/{m.dataset}.yaml`, SHA-256 `{m.spec_sha256}`
- code: pipelines {m.code.package_version}, commit `{m.code.git_commit}`, builder SHA-256 `{m.code.sha256}`
- event schema versions seen: {", ".join(f"{t} v{'/v'.join(map(str, v))}" for t, v in m.schema_versions.items())}
- MLflow run `{m.mlflow_run_id}` (experiment `{m.mlflow_experiment_id}`)
- inputs digest `{m.input_digest}`; build fingerprint `{m.fingerprint}`

## How to load

```python
from palindrom.data import load_training_dataset

train = load_training_dataset("{m.dataset}", release={m.release}, split="train")
```

or export it: `pipelines dataset export {m.dataset}@{m.release} --format hf --out DIR`, then
`datasets.load_from_disk(DIR)`.
"""


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def plots(manifest: Manifest) -> dict[str, bytes]:
    """The sequence-length histogram and the source-mix chart, as PNG bytes by file name."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    lengths = Figure(figsize=(7, 3.5))
    ax = lengths.subplots()
    for split, bins in manifest.length_histogram.items():
        if bins:
            ax.stairs([n for _, _, n in bins], [lo for lo, _, _ in bins] + [bins[-1][1]], label=split)
    ax.set_xlabel("tokens per document (EOS included; the last bin: the sequence length and more)")
    ax.set_ylabel("documents")
    ax.set_title(f"{manifest.dataset} release {manifest.release}: document lengths")
    ax.legend()

    mix = Figure(figsize=(7, 3))
    ax = mix.subplots()
    names = [x.source for x in manifest.mix]
    positions = range(len(names))
    ax.barh([p + 0.2 for p in positions], [x.target_share for x in manifest.mix], height=0.4, label="target")
    ax.barh([p - 0.2 for p in positions], [x.achieved_share for x in manifest.mix], height=0.4, label="achieved")
    ax.set_yticks(list(positions), names)
    ax.set_xlabel("share of train tokens")
    ax.set_title(f"{manifest.dataset} release {manifest.release}: source mix")
    ax.legend()
    return {SEQUENCE_LENGTHS_PNG: _png(lengths), SOURCE_MIX_PNG: _png(mix)}
