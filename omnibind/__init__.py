"""omnibind: bind every modality to a language model."""
__version__ = "0.1.0"
