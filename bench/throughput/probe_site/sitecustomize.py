"""Run by the interpreter of a worker the latency phase probes (``bench.throughput.probe``):
this directory and the checkout's root come first on its ``PYTHONPATH``."""

import os
from pathlib import Path

from bench.throughput.probe import ENV, install

if os.environ.get(ENV):
    install(Path(os.environ[ENV]))
