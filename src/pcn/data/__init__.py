"""Datasets for pcn: loading by name, IDX/CIFAR/SVHN/Tiny ImageNet readers, folders of
images, Flickr captioned images, text corpora with a trained tokenizer, seeded
mini-batching."""

from .batching import batches as batches
from .batching import one_hot as one_hot
from .batching import stream_aligned_batches as stream_aligned_batches
from .dataset import Dataset as Dataset
from .download import ChecksumError as ChecksumError
from .flickr import CaptionedImages as CaptionedImages
from .flickr import read_flickr as read_flickr
from .flickr import read_flickr_captions as read_flickr_captions
from .idx import read_idx as read_idx
from .image_files import read_image_folder as read_image_folder
from .registry import DatasetNotFoundError as DatasetNotFoundError
from .registry import list_datasets as list_datasets
from .registry import list_text_datasets as list_text_datasets
from .registry import load as load
from .svhn import read_svhn as read_svhn
from .text import TextCorpus as TextCorpus
from .text import TokenizedText as TokenizedText
from .text import load_text as load_text
from .text import read_text_corpus as read_text_corpus
from .text import train_tokenizer as train_tokenizer
from .tiny_imagenet import TinyImageNetVal as TinyImageNetVal
from .tiny_imagenet import read_tiny_imagenet_val as read_tiny_imagenet_val
