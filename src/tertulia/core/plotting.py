"""Matplotlib, loaded when a plot is first drawn.

Importing pyplot (with pandas, scipy and statsmodels, which the plots' callers use) costs about
a second of CPU. Modules that draw or compute statistics import it inside the functions that
need it, so that a web or worker process starts, and answers its first request, without it.
"""

from __future__ import annotations

from types import ModuleType


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend: servers have no screen."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot is first imported
    import matplotlib.pyplot as plt

    return plt
