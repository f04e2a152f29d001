"""Entry point for the DDP test: ``torchrun ... ddp_worker.py CONFIG.json`` trains one run."""

import json
import sys

from mtdense.config import from_dict
from mtdense.engine.trainer import Trainer

if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        Trainer(from_dict(json.load(f))).fit()
