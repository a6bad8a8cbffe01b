"""``python -m wheelhouse``: the same as the ``wheelhouse`` command."""

from wheelhouse.cli import main

if __name__ == "__main__":
    main()
