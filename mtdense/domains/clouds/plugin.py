"""Plugin module of the cloud-detection domain (entry point ``clouds`` in ``mtdense.plugins``)."""

LOCATIONS = {
    "dataset": ["mtdense.domains.clouds.cloud38", "mtdense.domains.clouds.oncloudn", "mtdense.domains.clouds.soft_targets"],
    "metric": ["mtdense.domains.clouds.metrics"],
    "teacher": ["mtdense.domains.clouds.nnunet_like", "mtdense.domains.clouds.nnunetv2_bridge"],
    "coupling": ["mtdense.domains.clouds.distillation", "mtdense.domains.clouds.feature_distillation"],
    "hook": ["mtdense.domains.clouds.soft_targets"],
}
CLI = "mtdense.domains.clouds.cli"
