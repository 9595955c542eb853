#!/usr/bin/env bash
# The GPU checks in one run, for a GPU machine with Python 3.12, torch, transformers and
# sentence-transformers but no Java, no pyspark and no network (the device machine lent to some
# sessions), which takes at most 64 MiB of files along:
#
#   bench/gpu.sh prepare   here: MiniLM as fp16 safetensors into bench/minilm-fp16/ (46 MB; the
#                          packaged fp32 weights are 90 MB) and, into .whl/, wheels of the core's
#                          other dependencies at constraints.txt's versions (9 MB); PyAV's into
#                          .whl-pyav/ (36 MB)
#   bench/gpu.sh run       there, carrying both folders: the gpu-marked core tests on CUDA, then
#                          bench/embeddings.py --core-only in bf16 and fp16 at batch sizes 64 and 512,
#                          then bench/wav2vec2_windows.py on an hour's recording; logs and JSON results
#                          into $OUT (bench/results/gpu/ when unset)
#   bench/gpu.sh run-pyav  there, carrying .whl/ and .whl-pyav/: the three gpu-marked tests that
#                          decode video or resample audio with PyAV (FFmpeg, 36 MB), which does not
#                          fit beside the model in one trip
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS="pydantic pydantic_core annotated-types typing-inspection jsonschema jsonschema-specifications referencing
        rpds-py orjson filetype ImageHash PyWavelets soundfile cffi pycparser"
NEEDS_PYAV=(
  tests/unit/media/test_embedders.py::test_video_is_the_normalised_mean_of_its_key_frames
  tests/unit/media/test_embedders.py::test_tiny_wav2vec2_resamples_to_its_rate
  tests/unit/media/test_embedders.py::test_resample_keeps_duration_and_pitch
)

prepare() {
  [ -d bench/minilm-fp16 ] || .venv/bin/python bench/embeddings.py --export-fp16 bench/minilm-fp16
  local pins=() name
  for name in $WHEELS; do
    pins+=("$(grep -i -m1 -E "^$(sed 's/[-_]/[-_]/g' <<<"$name")==" constraints.txt)") \
      || { echo "constraints.txt pins no $name" >&2; exit 1; }
  done
  rm -rf .whl .whl-pyav
  download .whl "${pins[@]}"
  download .whl-pyav "$(grep -m1 '^av==' constraints.txt)"
  du -sh bench/minilm-fp16 .whl .whl-pyav
}

download() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$@"
}

install_wheels() {
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site "$@"
  export PYTHONPATH=/tmp/site:src HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
}

run() {
  local out=${OUT:-bench/results/gpu} status=0 precision batch
  mkdir -p "$out"
  install_wheels .whl/*.whl
  export MINILM_DIR=bench/minilm-fp16
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
  python3 -m pytest -o addopts="-ra" -p no:cacheprovider -m gpu tests/unit/media/test_embedders.py \
    "${NEEDS_PYAV[@]/#/--deselect=}" 2>&1 | tee "$out/tests.log" || status=1
  for precision in bf16 fp16; do
    for batch in 64 512; do
      python3 bench/embeddings.py --core-only --device cuda --precision "$precision" --batch-size "$batch" \
        --texts 50000 --model-dir bench/minilm-fp16 --out "$out/core-$precision-$batch.json" 2>&1 \
        | grep -v "Loading weights" || status=1
    done
  done
  python3 bench/wav2vec2_windows.py --minutes 60 --out "$out/wav2vec2-windows.json" 2>&1 \
    | grep -v -e "Loading weights" -e "Writing model" || status=1
  return "$status"
}

run_pyav() {
  local out=${OUT:-bench/results/gpu}
  mkdir -p "$out"
  install_wheels .whl/*.whl .whl-pyav/*.whl
  python3 -m pytest -o addopts="-ra" -p no:cacheprovider -m gpu "${NEEDS_PYAV[@]}" 2>&1 | tee "$out/tests-pyav.log"
}

case "${1:-}" in
  prepare) prepare ;;
  run) run ;;
  run-pyav) run_pyav ;;
  *) echo "usage: bench/gpu.sh prepare|run|run-pyav   (see the comment at the top)" >&2; exit 2 ;;
esac
