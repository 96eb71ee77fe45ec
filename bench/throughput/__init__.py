"""The throughput benchmark (``python -m bench.throughput``): see ``__main__``."""
