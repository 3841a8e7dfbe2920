"""Datasets for pcn: loading by name, IDX/CIFAR readers, text corpora with a trained
tokenizer, seeded mini-batching."""

from .batching import batches as batches
from .batching import one_hot as one_hot
from .dataset import Dataset as Dataset
from .download import ChecksumError as ChecksumError
from .idx import read_idx as read_idx
from .registry import DatasetNotFoundError as DatasetNotFoundError
from .registry import list_datasets as list_datasets
from .registry import list_text_datasets as list_text_datasets
from .registry import load as load
from .text import TextCorpus as TextCorpus
from .text import TokenizedText as TokenizedText
from .text import load_text as load_text
from .text import read_text_corpus as read_text_corpus
from .text import train_tokenizer as train_tokenizer
