"""Importers of the field's released checkpoints into omnibind models (docs/IMPORT.md).

- ``llava``: a Hugging Face ``LlavaForConditionalGeneration`` folder (llava-hf layout) → an
  omnibind checkpoint with its CLIP tower, per-patch MLP projector and LLM (logits-equivalent);
- ``pandagpt``: PandaGPT's released delta (``llama_proj`` + LoRA on Vicuna) over ImageBind and a
  Vicuna folder the user supplies;
- ``xinstructblip``: X-InstructBLIP's per-modality Q-Former checkpoints, where they map.

Each sits above ``omnibind.checkpoint`` (it writes checkpoints) and below ``omnibind.api`` (which
imports a LLaVA folder given to ``load``); ``omnibind import ...`` is ``importers/cli.py``.
"""
