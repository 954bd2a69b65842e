"""Data sets of the pipeline: generation, validation split and validated loading."""

from nnassure.data.images import ImageDataset, load_digits_images, load_image_dataset, save_image_dataset, split_indices
from nnassure.data.signs import SIGN_CLASSES, render_signs
from nnassure.data.synthetic import generate_dataset, stratified_split
from nnassure.data.table import DATASET_COLUMNS, load_dataset, split_arrays

__all__ = [
    "DATASET_COLUMNS",
    "SIGN_CLASSES",
    "ImageDataset",
    "generate_dataset",
    "load_dataset",
    "load_digits_images",
    "load_image_dataset",
    "render_signs",
    "save_image_dataset",
    "split_arrays",
    "split_indices",
    "stratified_split",
]
