"""``python -m omnibind``: the same command line as the ``omnibind`` script."""

from omnibind.cli import main

main()
