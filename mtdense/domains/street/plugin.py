"""Plugin module of the street domain (entry point ``street`` in ``mtdense.plugins``)."""

LOCATIONS = {
    "dataset": ["mtdense.domains.street.cityscapes", "mtdense.domains.street.scannet"],
    "batch_transform": ["mtdense.domains.street.affinemix", "mtdense.domains.street.coloraug"],
}
CLI = "mtdense.domains.street.cli"
