"""``python -m pipeline`` is the ``invsync`` command."""

from pipeline.cli import main

main()
