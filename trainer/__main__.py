"""`python -m trainer`: the same command line as the `trainer` console script (trainer/cli.py)."""

from trainer.cli import main

if __name__ == "__main__":
    main()
