"""The ``anchorline`` command."""
