"""LLM backends. Importing registers the transformers backend, and llama.cpp when its binding is installed."""

import importlib

from omnibind.llm.backends import transformers  # noqa: F401  (registration)
from omnibind.llm.backends.base import LLM_BACKENDS, GenerationOptions, LLMBackend

try:  # optional extra: only registers when its module exists
    importlib.import_module("omnibind.llm.backends.llamacpp")
except ModuleNotFoundError as e:  # pragma: no cover - depends on the installed extras
    if "omnibind.llm.backends.llamacpp" not in str(e) and "llama" not in str(e).lower():
        raise

__all__ = ["LLM_BACKENDS", "GenerationOptions", "LLMBackend"]
