"""mtdense: dense multi-task learning, assembled from YAML."""

__version__ = "0.1.0"
