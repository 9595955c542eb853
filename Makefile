# Quick start: `make run` (sample data through the whole local pipeline), `make test` (all tests).
# Both run the idempotent set-up first: .venv/, the Delta jars in .jars/, Apicurio in .cache/.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test test-unit bench bench-embeddings bench-gold lint clean

setup:
	@./scripts/setup.sh

# The sample run is many short Spark jobs, each task in a fresh JVM: the C1 compiler alone gets them
# done sooner than C1 + C2 on a small machine (3 min 10 s -> 2 min 38 s here), as in the tests
# (tests/conftest.py). Not a default for large runs: C2's code cleans 1,000,000 events in 18 s, C1's
# in 28 s. SPARK_SUBMIT_OPTS reaches the Spark driver's JVM (JDK_JAVA_OPTIONS would too, with a note
# printed by every JVM); an environment that sets it keeps its own.
run: export SPARK_SUBMIT_OPTS ?= -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m
run: setup
	$(BIN)/pipelines sample-data
	$(BIN)/pipelines run daily_ingestion
	$(BIN)/pipelines run media_processing
	$(BIN)/pipelines run gold_build
	$(BIN)/pipelines dataset build multimodal_captions
	$(BIN)/pipelines dataset list
	$(BIN)/pipelines tables

test: setup
	$(BIN)/ruff check src tests bench scripts notebooks
	$(BIN)/pytest

test-unit: setup
	$(BIN)/pytest tests/unit

bench: setup
	$(BIN)/python bench/events.py

bench-embeddings: setup
	$(BIN)/python bench/embeddings.py

bench-gold: setup
	$(BIN)/python bench/gold.py

lint: setup
	$(BIN)/ruff check src tests bench scripts notebooks

clean:
	rm -rf lake .cache/spark-warehouse bench/results
