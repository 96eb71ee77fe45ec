"""Every extension of Faust's internals, fenced in one package."""
