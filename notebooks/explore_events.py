# Databricks notebook source
# MAGIC %md
# MAGIC # Explore the events path
# MAGIC Bronze → silver → gold for the events, read through the same storage layer the jobs use.
# MAGIC Set `env` (and optionally `root`) with the widgets; locally, run the cells in a Python session
# MAGIC after `make run`.

# COMMAND ----------

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
spark = get_spark(config.spark, app_name="explore-events", storage_root=config.storage_root)
lake = Lake(config.storage_root)

# COMMAND ----------

# Every table, its Delta version and row count.
for ref in lake.tables():
    if tables.exists(ref):
        print(f"{ref.name:<34} v{tables.current_version(ref):<4} {tables.read(spark, ref).count():>10,}")

# COMMAND ----------

# Quarantine by reason, with an example of each.
quarantine = tables.read(spark, lake.table("silver.quarantine.events"))
quarantine.groupBy("reason").agg(F.count("*").alias("lines"), F.first("detail").alias("example")) \
    .orderBy(F.desc("lines")).show(truncate=False)

# COMMAND ----------

# Conversations per language (conversation.message v2 carries it).
silver = tables.read(spark, lake.table("silver.events"))
silver.filter("event_type = 'conversation.message'") \
    .groupBy(F.coalesce("conversation_message.language", F.lit("(v1: unknown)")).alias("language")) \
    .agg(F.countDistinct("conversation_message.conversation_id").alias("conversations")) \
    .orderBy(F.desc("conversations")).show()

# COMMAND ----------

# Daily activity per event type, from gold.
tables.read(spark, lake.table("gold.events_daily")).groupBy("event_date", "event_type") \
    .agg(F.sum("event_count").alias("events"), F.countDistinct("user_id").alias("users")) \
    .orderBy("event_date", "event_type").show(50)
