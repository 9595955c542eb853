# Databricks notebook source
# MAGIC %md
# MAGIC # Explore training-dataset releases
# MAGIC The committed releases, one release's manifest and card, and its rows decoded back to text, all
# MAGIC read without Spark (delta-rs and pyarrow), as a training job reads them. Set `env` (and
# MAGIC optionally `root`) with the widgets; locally, run the cells in a Python session after `make run`.

# COMMAND ----------

from tokenizers import Tokenizer

from palindrom.config import notebook_parameters
from palindrom.data import list_releases, load_training_dataset
from palindrom.data.releases import read_file, resolve

try:  # dbutils: the Databricks notebook global (ruff knows it in "# Databricks notebook source" files)
    widgets = dbutils.widgets
except NameError:  # not on Databricks: PIPELINES_ENV, PIPELINES_ROOT, PIPELINES_DATASET
    widgets = None
config, parameters = notebook_parameters(widgets, dataset="chat_sft")
dataset = parameters["dataset"]

# COMMAND ----------

# MAGIC %md Every committed release, newest last per dataset.

# COMMAND ----------

for r in list_releases(config):
    inputs = ", ".join(f"{i.table}@v{i.version}" for i in r.manifest.inputs)
    print(f"{r.dataset}@{r.release}: {r.manifest.rows:,} rows, {r.manifest.total_tokens:,} tokens, "
          f"built {r.manifest.created_at[:19]} from {inputs}")

# COMMAND ----------

# MAGIC %md The latest release of one dataset: what each stage removed, and the mix.

# COMMAND ----------

release = resolve(config, dataset)
for stage in release.manifest.stages:
    print(f"{stage.stage:<22} {stage.documents_in:>8,} → {stage.documents_out:>8,}  {stage.dropped}")
for m in release.manifest.mix:
    print(f"{m.source:<16} target {m.target_share:.0%}  achieved {m.achieved_share:.0%}  repeated {m.repeat:.2f}x")

# COMMAND ----------

# MAGIC %md A few training rows, decoded with the release's own tokenizer (`document_index` splits them by document).

# COMMAND ----------

train = load_training_dataset(dataset, release.release, split="train", config=config)
tokenizer = Tokenizer.from_str(read_file(release, "tokenizer.json").decode())
for row in train.select(range(min(2, train.num_rows))):
    print(row["example_id"], row["document_ids"])
    print(tokenizer.decode(row["input_ids"], skip_special_tokens=False)[:600], "\n")

# COMMAND ----------

# MAGIC %md The dataset card.

# COMMAND ----------

print(read_file(release, "README.md").decode())
