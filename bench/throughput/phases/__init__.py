"""The benchmark's phases, one module each."""
