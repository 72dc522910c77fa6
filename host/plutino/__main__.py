"""``python -m plutino``: the same as the ``plutino`` command."""

from plutino.cli.main import main

if __name__ == "__main__":
    main(prog_name="plutino")
