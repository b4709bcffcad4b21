"""``python -m slubsim``: the same CLI as the ``slubsim`` command."""

from slubsim.cli import main

main()
