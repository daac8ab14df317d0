"""``python -m dlcli.cli``: the same as the ``dlcli`` command (tests and the tuner's workers start it this way)."""

from dlcli.cli import main

main()
