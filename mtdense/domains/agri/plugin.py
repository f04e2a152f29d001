"""Plugin module of the agriculture domain (entry point ``agri`` in ``mtdense.plugins``)."""

LOCATIONS = {"dataset": ["mtdense.domains.agri.dataset"]}
CLI = "mtdense.domains.agri.cli"
