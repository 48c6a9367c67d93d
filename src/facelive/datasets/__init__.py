"""Readers of face anti-spoofing databases (one module each) and the HDF5 training cache.

>>> ds = open_dataset("replay-attack", "/data/replay-attack", split="devel", protocol="print")
>>> s = ds.samples()[0]; s.label, s.attack_type, s.group; img = s.load()   # BGR uint8
"""

from facelive.datasets.base import LABELS, SPLITS, Dataset, Sample
from facelive.datasets.nuaa import nuaa_subject_split
from facelive.datasets.registry import DATASET_NAMES, open_dataset

__all__ = ["DATASET_NAMES", "LABELS", "SPLITS", "Dataset", "Sample", "nuaa_subject_split",
           "open_dataset"]
