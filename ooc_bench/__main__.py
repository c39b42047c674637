"""``python -m ooc_bench`` runs the CLI."""

from .cli import main

main()
