"""Tests of the plugin loader, the registry and `plutino plugin check`."""
