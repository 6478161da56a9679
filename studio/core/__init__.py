"""Pure-Python core: graph, catalog, shapes, project files. No Qt, no torch at import time."""
