"""Loader options, declared once per modality (in the modality's own file) and read everywhere else.

A modality lists the options its loader reads as ``Option`` records: name, type, allowed values
(``choices``) or bounds (``range``), unit and default. The same records decide

- what the loader accepts: ``check_options`` refuses any other key with an ``InputError`` naming
  it and the allowed ones (a misspelt option must not be silently ignored);
- what an HTTP client may set: only options marked ``client=True``, within ``client_range`` when
  that is tighter than ``range`` (a request from a stranger must not ask for a billion points).

Cheap to import (no decoders), so the server and the docs can read the declarations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omnibind.errors import InputError


@dataclass(frozen=True)
class Option:
    """One loader option of a modality.

    Attributes:
        name: the key in ``MediaPart.options`` / ``modalities.load(options=...)``.
        type: ``bool``, ``int``, ``float``, ``str`` (then ``choices`` lists the values) or ``object``
            (decoded data that only Python callers can pass).
        help: what the option means, for docs and error messages.
        default: the loader's value when the option is not given (``None``: decided from the input).
        choices: the allowed values of a ``str`` option.
        range: inclusive ``(low, high)`` bounds the loader accepts, when it has any.
        unit: the unit of a number (``Hz``, ``metres per unit``...).
        client: whether an HTTP client may set it (the server refuses the others).
        client_range: bounds for client values when tighter than ``range``.
    """

    name: str
    type: type
    help: str = ""
    default: Any = None
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | None = None
    unit: str = ""
    client: bool = False
    client_range: tuple[float, float] | None = None

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The bounds that apply to a client's value: ``client_range``, else ``range``."""
        return self.client_range or self.range


def option_names(options: tuple[Option, ...]) -> list[str]:
    """The declared option names, sorted (as error messages list them)."""
    return sorted(o.name for o in options)


def check_options(
    declared: tuple[Option, ...], given: Mapping[str, Any] | None, *, modality: str, label: str
) -> dict[str, Any]:
    """``given`` as a dict, or an ``InputError`` naming the first key ``declared`` does not list."""
    given = dict(given or {})
    names = {o.name for o in declared}
    for key in given:
        if key not in names:
            raise InputError(
                label,
                f"unknown {modality} option {key!r}; allowed: {option_names(declared)}",
                modality=modality,
            )
    return given


def client_options(declared: tuple[Option, ...]) -> dict[str, Option]:
    """The options an HTTP client may set, by name."""
    return {o.name: o for o in declared if o.client}
