"""Projectors: bind space (or encoder features) → k soft tokens. Importing this package registers all of them."""

from omnibind.projectors import bind_network, feature_mlp, linear, mlp, qformer, token_mlp  # noqa: F401  (registration)
from omnibind.projectors.base import PROJECTORS, Projector

__all__ = ["PROJECTORS", "Projector"]
