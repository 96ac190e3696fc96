"""`python -m ircd` is the `ircd` command, for when the console script is not on PATH."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="ircd")
