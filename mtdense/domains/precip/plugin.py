"""Plugin module of the precipitation domain (entry point ``precip`` in ``mtdense.plugins``)."""

LOCATIONS = {"dataset": ["mtdense.domains.precip.tile_store"]}
CLI = "mtdense.domains.precip.cli"
