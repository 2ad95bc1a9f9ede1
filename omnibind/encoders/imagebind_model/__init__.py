"""ImageBind (Girdhar et al., CVPR 2023) re-implemented for omnibind: architecture with the official
``imagebind_huge.pth`` state_dict names (``net``), per-modality preprocessing (``preprocess``) and the
CLIP byte-level BPE tokenizer (``bpe``). The registry entry lives in ``omnibind.encoders.imagebind``."""
