"""mattecli: build matting datasets, train the classic matting families, evaluate, and matte."""
__version__ = "0.1.0"
