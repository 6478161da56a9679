"""Ready projects shipped with Studio (read through importlib.resources)."""
