"""Plugin module of the street domain (entry point ``street`` in ``mtdense.plugins``)."""

LOCATIONS = {"dataset": ["mtdense.domains.street.cityscapes"]}
CLI = "mtdense.domains.street.cli"
