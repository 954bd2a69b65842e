"""Data sets of the pipeline: generation, validation split and validated loading."""

from nnassure.data.synthetic import generate_dataset, stratified_split
from nnassure.data.table import DATASET_COLUMNS, load_dataset, split_arrays

__all__ = ["DATASET_COLUMNS", "generate_dataset", "load_dataset", "split_arrays", "stratified_split"]
