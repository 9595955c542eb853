# Databricks notebook source
# MAGIC %md
# MAGIC # Explore the media path
# MAGIC Bronze media → silver metadata, quarantine and embeddings, read through the storage layer the
# MAGIC jobs use. Set `env` (and optionally `root`) with the widgets; locally, run the cells in a Python
# MAGIC session after `make run`.

# COMMAND ----------

import numpy as np
from pyspark.sql import functions as F

from palindrom.config import notebook_parameters
from palindrom.lake import tables
from palindrom.lake.paths import Lake
from palindrom.spark import get_spark

try:  # dbutils: the Databricks notebook global (ruff knows it in "# Databricks notebook source" files)
    widgets = dbutils.widgets
except NameError:  # not on Databricks: PIPELINES_ENV, PIPELINES_ROOT
    widgets = None
config, _ = notebook_parameters(widgets)
spark = get_spark(config.spark, app_name="explore-media", storage_root=config.storage_root)
lake = Lake(config.storage_root)
metadata = tables.read(spark, lake.table("silver.media_metadata"))
embeddings = tables.read(spark, lake.table("silver.media_embeddings"))

# COMMAND ----------

# MAGIC %md What was described, per media type, and which files lie about their extension.

# COMMAND ----------

metadata.groupBy("media_type", "mime_type").count().orderBy("media_type").show()
metadata.filter("extension_mismatch").select("media_type", "path", "mime_type").show(truncate=False)
metadata.filter(F.size("paths") > 1).select("sha256", "paths").show(truncate=False)

# COMMAND ----------

# MAGIC %md What could not be decoded, and why.

# COMMAND ----------

tables.read(spark, lake.table("silver.quarantine.media")).groupBy("media_type", "reason").count().show()

# COMMAND ----------

# MAGIC %md Embeddings per modality and model (a new model or revision adds rows beside the old).

# COMMAND ----------

embeddings.groupBy("modality", "model_name", "model_revision", "dim").count().show(truncate=False)

# COMMAND ----------

# MAGIC %md Nearest images to the first one, by cosine similarity (vectors are unit length).

# COMMAND ----------

images = (embeddings.filter("modality = 'image'").join(metadata.select("sha256", "path"), "sha256")
          .select("path", "vector").collect())
if images:
    vectors = np.array([r["vector"] for r in images])
    for i in np.argsort(-(vectors @ vectors[0]))[:5]:
        print(f"{float(vectors[i] @ vectors[0]):.3f}  {images[i]['path']}")
