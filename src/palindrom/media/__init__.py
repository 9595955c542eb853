"""Spark-free media core: decoding, facts and batched embedding inference.

Nothing here imports pyspark: the Spark processors in `palindrom.data` wrap these functions in
UDFs, and the same functions run (and are benchmarked) on a machine with no JVM at all.
"""
