"""Anchorline's contracts: ``anchor``, ``settlement`` and ``access`` (see each module)."""
