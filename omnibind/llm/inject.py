"""Injection of modality features into the LLM.

``prefix`` (X-InstructBLIP / PandaGPT / LLaVA): soft tokens sit in the sequence after a text cue;
handled entirely by ``assemble``. ``gated`` (ImageBind-LLM): the projected feature is added to
every token's hidden state in every layer, scaled by a per-layer gate that starts at zero so the
pretrained LLM is untouched at initialisation.
"""

from __future__ import annotations

import torch
from torch import nn

from omnibind.errors import ConfigError
from omnibind.llm.backends.base import LayerInjection

INJECTIONS = ("prefix", "gated")


class LayerGates(nn.Module):
    """Zero-initialised per-layer gates (ImageBind-LLM's gating factor)."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.gates = nn.Parameter(torch.zeros(num_layers))

    def injection(self, feature: torch.Tensor) -> LayerInjection:
        """(B, H) feature → the backend's LayerInjection (gates squashed by tanh, as a bounded scale)."""
        return LayerInjection(feature=feature, gates=torch.tanh(self.gates))


def check_injection(kind: str) -> str:
    if kind not in INJECTIONS:
        raise ConfigError(f"unknown injection {kind!r}; expected one of {INJECTIONS}")
    return kind
