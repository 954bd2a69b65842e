#!/usr/bin/env bash
# Run by Snakemake (--use-conda) inside the environment it has just created from nnassure.yaml.
# Snakemake runs a copy of this file from .snakemake/conda/, with the working directory of the
# run, so neither $0 nor the current directory says where the repository is: the Snakefile
# exports NNASSURE_REPO (its own directory) for this script.
set -euo pipefail
repo="${NNASSURE_REPO:-}"
if [ -z "$repo" ] || [ ! -f "$repo/pyproject.toml" ]; then
    echo "nnassure post-deploy: NNASSURE_REPO must name the nnassure repository (got '${repo}')" >&2
    exit 1
fi
# auto_LiRPA 0.3 pins torch<1.13; it runs on the environment's torch 2.13 with nnassure.lirpa_compat.
python -m pip install --no-deps auto_LiRPA==0.3
# onnx2torch requires torchvision, which does not load beside this torch (nnassure.onnx_compat).
python -m pip install --no-deps onnx2torch==1.5.15
python -m pip install --no-deps -e "$repo"
