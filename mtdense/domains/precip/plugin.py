"""Plugin module of the precipitation domain (entry point ``precip`` in ``mtdense.plugins``)."""

LOCATIONS = {"dataset": ["mtdense.domains.precip.tile_store", "mtdense.domains.precip.satrain"],
             "rule": ["mtdense.domains.precip.gpi_baseline"]}
CLI = "mtdense.domains.precip.cli"
