"""Credit-scoring domain: data, client-file store, model, explanations, monitoring, API.

Nothing here imports Panel: the same objects serve the dashboard, notebooks, the CLI and the API.
"""

__version__ = "0.1.0"
