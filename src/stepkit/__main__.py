"""``python -m stepkit``: the same as the ``stepkit`` command."""

from stepkit.cli import main

main()
