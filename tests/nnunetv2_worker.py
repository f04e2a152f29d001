"""Run real nnU-Net v2 code on a tiny exported cloud dataset (called by test_clouds_nnunetv2.py in a
subprocess, because nnunetv2 reads nnUNet_raw/_preprocessed/_results from the environment at import).

argv: RAW_PARENT_DIR DATASET_NAME; prints the trained model folder."""

import os
import sys

import torch


def main(name: str) -> None:
    from nnunetv2.experiment_planning.plan_and_preprocess_api import (extract_fingerprints, plan_experiments,
                                                                      preprocess)
    from nnunetv2.paths import nnUNet_preprocessed, nnUNet_results
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer
    from batchgenerators.utilities.file_and_folder_operations import join, load_json

    dataset_id = int(name[7:10])
    extract_fingerprints([dataset_id], check_dataset_integrity=True, num_processes=1)
    plan_experiments([dataset_id])
    preprocess([dataset_id], configurations=("2d",), num_processes=(1,))
    os.environ["nnUNet_n_proc_DA"] = "0"  # planning needs ≥ 1 (torch threads); training: single-threaded augmenter
    plans = load_json(join(nnUNet_preprocessed, name, "nnUNetPlans.json"))
    plans["continue_training"] = False  # read (and popped) by nnUNetTrainer.__init__ in nnunetv2 2.8
    dataset_json = load_json(join(nnUNet_preprocessed, name, "dataset.json"))
    trainer = nnUNetTrainer(plans, "2d", 0, dataset_json, device=torch.device("cpu"))
    trainer.num_epochs = 1
    trainer.num_iterations_per_epoch = 2
    trainer.num_val_iterations_per_epoch = 1
    trainer.run_training()
    print(trainer.output_folder_base if hasattr(trainer, "output_folder_base") else join(
        nnUNet_results, name, "nnUNetTrainer__nnUNetPlans__2d"))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1])
