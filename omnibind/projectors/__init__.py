"""Projectors: bind space → k soft tokens. Importing this package registers all of them."""

from omnibind.projectors import bind_network, linear, mlp, qformer  # noqa: F401  (registration)
from omnibind.projectors.base import PROJECTORS, Projector

__all__ = ["PROJECTORS", "Projector"]
