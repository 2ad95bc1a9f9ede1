"""Typed errors. Every bad input is reported here, never as a decoder traceback."""

from __future__ import annotations

from pathlib import Path


class OmnibindError(Exception):
    """Base class of every error omnibind raises on purpose."""


class InputError(OmnibindError, ValueError):
    """A user-supplied input (file, bytes, array) cannot be used.

    ``source`` names the file (or ``<bytes>``/``<array>``), ``problem`` says what is wrong.
    """

    def __init__(self, source: str | Path | None, problem: str, *, modality: str | None = None):
        self.source = str(source) if source is not None else "<input>"
        self.problem = problem
        self.modality = modality
        where = f"{modality} " if modality else ""
        super().__init__(f"{where}input {self.source}: {problem}")


class InputTooLargeError(InputError):
    """The input exceeds a configured limit (pixels, seconds, points, bytes...)."""


class PromptTooLongError(InputTooLargeError):
    """A prompt (text, cues and soft tokens, as assembled) plus its answer budget does not fit the
    model's context, or the prompt exceeds a configured cap (``max_prompt_tokens``)."""

    def __init__(self, prompt_tokens: int, max_new_tokens: int, context: int | None, cap: int | None = None):
        self.prompt_tokens, self.max_new_tokens, self.context, self.cap = prompt_tokens, max_new_tokens, context, cap
        if cap is not None and prompt_tokens > cap:
            problem = f"the prompt is {prompt_tokens} tokens; the limit is max_prompt_tokens={cap}"
        else:
            problem = (
                f"the prompt is {prompt_tokens} tokens and max_tokens is {max_new_tokens}: "
                f"{prompt_tokens + max_new_tokens} > the model's context of {context} tokens"
            )
        super().__init__("<prompt>", problem)


class UnsupportedFormatError(InputError):
    """The file's type is not one this modality reads."""


class ConfigError(OmnibindError, ValueError):
    """A configuration is invalid or inconsistent."""


class RegistryError(OmnibindError, KeyError):
    """Unknown or duplicate registry key."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CheckpointError(OmnibindError):
    """A checkpoint is missing, corrupt or does not match the model."""


class TemplateMismatchError(OmnibindError):
    """Label masking disagrees with the chat template (LLaVA's silent 'tokenization mismatch')."""


class BackendUnsupportedError(OmnibindError):
    """The chosen LLM backend cannot run this model configuration."""
