"""Data sets, outlier-exposure sources and benchmark splits.

Every image set is held as a uint8 tensor (N, 3, H, W), so a training job indexes and augments whole
batches on its device instead of decoding images one by one.
"""
from .core import ImageSet, Split, load_image_folder, resize_uint8
from .registry import DATASETS, OE_SOURCES, BENCHMARKS, DatasetSpec, get_dataset, load_oe, build_split
from .benchmarks import OEOverlapError

__all__ = [
    "ImageSet", "Split", "load_image_folder", "resize_uint8",
    "DATASETS", "OE_SOURCES", "BENCHMARKS", "DatasetSpec", "get_dataset", "load_oe", "build_split", "OEOverlapError",
]
