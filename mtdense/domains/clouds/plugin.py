"""Plugin module of the cloud-detection domain (entry point ``clouds`` in ``mtdense.plugins``)."""

LOCATIONS = {
    "dataset": ["mtdense.domains.clouds.cloud38", "mtdense.domains.clouds.oncloudn"],
    "metric": ["mtdense.domains.clouds.metrics"],
}
CLI = "mtdense.domains.clouds.cli"
