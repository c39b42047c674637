#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_suite.py needs on a GPU machine whose own Python lacks them (no network there).
#
#   bash benchmarks/gpu_wheels.sh [DIR]          # default DIR: .whl (ignored by git; a device run names it in carry)
#
# On the GPU machine (Python 3.12 with torch, timm, peft, transformers, accelerate already installed):
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site DIR/*.whl
#   PYTHONPATH=/tmp/site python3 benchmarks/gpu_suite.py --out RESULTS_DIR
# Versions are the ones constraints.txt pins; all of these are pure-Python wheels today. The tags asked for are the
# GPU machine's (CPython 3.12, manylinux x86_64), so a compiled package added to the list gets the wheel that runs
# there, not one for this machine's Python. Their other needs (requests, tqdm, scipy, ...) are in that image.
# peft is carried although that image has one, of unknown version: diffusers 0.42 needs peft >= 0.15
# (peft.helpers.disable_input_dtype_casting) and transformers 5 one newer than 0.17 (HybridCache is gone).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-.whl}
mkdir -p "$dir"
pins=()
for name in diffusers peft torch_fidelity submitit openpyxl et_xmlfile clean-fid; do
  pin=$(grep -i -E "^${name//_/[-_]}==" constraints.txt || true)
  [ -n "$pin" ] || { echo "gpu_wheels: $name is not pinned in constraints.txt" >&2; exit 2; }
  pins+=("$pin")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp --abi cp312 \
  --abi abi3 --abi none --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d "$dir" "${pins[@]}"
ls -1 "$dir"
