"""``python -m symrnn``: the command line of symrnn/cli.py."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
