"""CLI subcommands, one module each (discovered by :mod:`stemgrains.cli`)."""
