"""Datasets for pcn: loading by name, IDX/CIFAR readers, seeded mini-batching."""

from .batching import batches as batches
from .batching import one_hot as one_hot
from .dataset import Dataset as Dataset
from .download import ChecksumError as ChecksumError
from .idx import read_idx as read_idx
from .registry import DatasetNotFoundError as DatasetNotFoundError
from .registry import list_datasets as list_datasets
from .registry import load as load
