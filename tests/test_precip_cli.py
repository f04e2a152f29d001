"""Options of `mtdense data prepare-precip` that reach the preparation."""

from mtdense.cli import main


def test_prepare_cli_passes_label_variable_and_split_fractions(tmp_path, capsys):
    import json

    import h5py

    from mtdense.domains.precip.synth import synth_precip

    synth_precip(tmp_path / "raw", n_scenes=4, height=16, width=16, seed=2, decoy_channels=0)
    store = tmp_path / "s.h5"
    assert main(["data", "prepare-precip", "--ahi", str(tmp_path / "raw" / "ahi"), "--imerg",
                 str(tmp_path / "raw" / "imerg"), "--out", str(store), "--tile", "8", "--min-valid", "0",
                 "--val-fraction", "0.25", "--test-fraction", "0.5", "--label-variable", "MWprecipitation",
                 "--split", "random", "--scheduler", "inline", "--min-quality", "0.5"]) == 0  # 4 scans: random split
    with h5py.File(store, "r") as f:
        parameters = json.loads(f.attrs["parameters"])
    assert parameters["label_variable"] == "MWprecipitation"
    assert parameters["val_fraction"] == 0.25 and parameters["test_fraction"] == 0.5
    assert parameters["min_quality"] == 0.5 and parameters["mask_space"] is True
