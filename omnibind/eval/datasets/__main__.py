"""``python -m omnibind.eval.datasets --write-splits``: rewrite ``omnibind/eval/splits/*.json``."""

import sys

from omnibind.eval.datasets.standard import write_splits

if "--write-splits" in sys.argv:
    for p in write_splits():
        print(p)
