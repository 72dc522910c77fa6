"""Tests of the REST API, the server process and the client commands."""
