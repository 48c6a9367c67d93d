"""Subcommands of the facelive CLI: one module each, with ``register(subparsers)``."""
