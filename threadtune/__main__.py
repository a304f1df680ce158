"""``python -m threadtune``: the same CLI as the ``threadtune`` command."""

from threadtune.cli import main

main()
