"""Icons and styles shipped with Studio (read through importlib.resources)."""
