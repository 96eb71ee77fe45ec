"""The throughput benchmark (``python -m bench.throughput``): see ``__main__``."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
