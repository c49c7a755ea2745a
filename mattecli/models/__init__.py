"""Networks of the four families, one module per family, and the registry that builds them."""
