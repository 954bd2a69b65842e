#!/usr/bin/env bash
# Run by Snakemake after it creates envs/nnassure.yaml (--use-conda).
set -euo pipefail
pip install --no-deps auto_LiRPA==0.3
pip install --no-deps -e "$(dirname "$0")/.."
