"""``python -m bootstrap ...``."""

from bootstrap.cli import main

main()
