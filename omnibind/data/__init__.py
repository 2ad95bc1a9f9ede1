"""Datasets: the JSONL format (and LLaVA JSON), checks, fixed splits, builders from packaged data,
instruction templates, LLM-generated Q&A, augmentation, modality experts and the feature cache.
See docs/DATA.md. Submodules import their heavy dependencies lazily.
"""

from omnibind.data.format import DatasetError, MediaItem, Sample, Turn, read_dataset, write_jsonl
from omnibind.data.splits import split_of

__all__ = ["DatasetError", "MediaItem", "Sample", "Turn", "read_dataset", "split_of", "write_jsonl"]
