"""The ``plutino`` command line (:mod:`.main`): plugin checks, package commands
(:mod:`.packages`), and the server and its REST client commands (:mod:`.server`)."""

from plutino.cli.main import main

__all__ = ["main"]
