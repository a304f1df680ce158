"""CLI command modules, one per part of the product; each has ``register(app)``."""
