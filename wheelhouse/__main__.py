"""``python -m wheelhouse``: the same command as the ``wheelhouse`` console script."""

from wheelhouse.cli import main

if __name__ == "__main__":
    main()
