#!/usr/bin/env bash
# The one command the session passes to the device machine (one H200, bare image, no network):
# install the carried wheels offline, then run the GPU check with its figures written to $OUT.
#
# Here first:  .venv/bin/python benchmarks/gpu/wheels.py            (fills benchmarks/gpu/wheels/, ~3.6 MiB)
#              .venv/bin/python benchmarks/gpu/check.py --dry       (the CPU rehearsal, under 2 minutes)
# Then the device tool's `run` with
#     command:   bash benchmarks/gpu/run_on_device.sh
#     carry:     ["benchmarks/gpu/wheels"]        (git-ignored, so it travels only when carried)
#     timeout_s: 540
# What comes back under $OUT: gpu_check.json, gpu_check.md, gpu_check.log, nvidia_smi.txt. The check
# rewrites the JSON after every section, so a run stopped by a limit still returns what it measured.
#
# The wheels go to their own folder (--target) on PYTHONPATH, with --no-deps: the image's torch, lightning,
# transformers and peft are used as they are, never reinstalled.
set -u -o pipefail
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
SITE=/tmp/site
PY=${PYTHON:-python3}
nvidia-smi >"$OUT/nvidia_smi.txt" 2>&1 || echo "nvidia-smi failed" >>"$OUT/nvidia_smi.txt"
shopt -s nullglob
wheels=(benchmarks/gpu/wheels/*.whl)
if [ ${#wheels[@]} -eq 0 ]; then
    echo "no wheels in benchmarks/gpu/wheels: build them here with benchmarks/gpu/wheels.py and carry the folder" >&2
    exit 2
fi
timeout 120 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "$SITE" "${wheels[@]}" || { echo "installing the wheels failed" >&2; exit 3; }
export PYTHONPATH="$SITE" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# The check keeps its own 8-minute budget; this guard stops it should a step hang.
timeout -k 10 500 "$PY" benchmarks/gpu/check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/gpu_check.log"
