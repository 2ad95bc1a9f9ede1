"""Regenerate omnibind/encoders/imagenet_common_names.py from WordNet (Debian ``wordnet-base``).

python scripts/make_imagenet_common_names.py
"""

from __future__ import annotations

from pathlib import Path

from omnibind.atomic import atomic_write_text
from omnibind.data.experts import COMMON_NAMES_MODULE, common_names_module


def main() -> None:
    """Write the table beside the encoders and say how many distinct names it has."""
    path = Path(__file__).resolve().parent.parent / COMMON_NAMES_MODULE
    text = common_names_module()
    atomic_write_text(path, text)
    print(f"wrote {path} ({text.count('  # ')} classes)")


if __name__ == "__main__":
    main()
