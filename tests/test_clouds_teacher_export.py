"""nnU-Net-like planner and teacher; on-board ONNX export (raw DN → mask) and int8 quantisation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mtdense.domains.clouds.cloud38 import read_patch
from mtdense.domains.clouds.nnunet_like import NnUNetLikeTeacher, deep_supervision_weights, fingerprint
from mtdense.domains.clouds.onboard_export import (export_onboard, onboard_module, quantize_int8, run_mask,
                                                   session)
from mtdense.domains.clouds.planner import Fingerprint, plan_2d, pool_topology

pytest.importorskip("dynamic_network_architectures")


@pytest.mark.parametrize("shape", [(384, 384), (128, 96), (37, 200), (20, 20)])
def test_pool_topology_equals_nnunetv2(shape):
    topology = pytest.importorskip("nnunetv2.experiment_planning.experiment_planners.network_topology")
    pools, strides, _, patch, _ = topology.get_pool_and_conv_props((1.0, 1.0), shape, 4, 999999)
    ours = pool_topology(shape)
    assert ours[0] == list(pools) and ours[1] == [list(s) for s in strides] and ours[2] == tuple(int(p) for p in patch)


def test_plan_follows_nnunet_rules():
    fp = Fingerprint((384, 384), 8400, 4, [0.0] * 4, [1.0] * 4)
    plan = plan_2d(fp, memory_gb=8.0)
    assert plan.patch_size == (384, 384) and plan.n_stages == 7  # 384 → 6 poolings to 6 px
    assert plan.features_per_stage == (32, 64, 128, 256, 512, 512, 512)
    assert plan.batch_size == round(85e6 / plan.estimate * 12)  # memory headroom, below the 5 % cap
    small = plan_2d(Fingerprint((128, 128), 10, 4, [0.0] * 4, [1.0] * 4), memory_gb=8.0)
    assert small.batch_size == 2  # 5 % of 10 images of 128² is < 1 patch → nnU-Net's minimum of 2
    tight = plan_2d(Fingerprint((128, 128), 40, 4, [0.0] * 4, [1.0] * 4), memory_gb=0.05)
    assert tight.patch_size[0] < 128 and tight.estimate / 12 * 2 <= 85e6 * 0.05 / 8  # patch shrunk to the budget
    assert deep_supervision_weights(3) == pytest.approx([2 / 3, 1 / 3, 0.0])


def test_teacher_plan_fingerprint_and_sliding_window_prediction(tiny_cloud_teacher):
    tmp, ds, folder = tiny_cloud_teacher
    fp = fingerprint(ds)
    pixels = torch.cat([s["image"][:, s["valid"]["cloud"]] for s in ds], 1).double()
    np.testing.assert_allclose(fp.mean, pixels.mean(1).numpy(), rtol=1e-5)
    teacher = NnUNetLikeTeacher(str(folder), mirror=True)
    image = torch.stack([ds[0]["image"], ds[1]["image"]])
    big = torch.nn.functional.pad(image, (0, 13, 0, 7))  # larger than the patch: sliding window
    out = teacher.predict(big)["cloud"]
    assert out.shape == (2, 2, *big.shape[-2:]) and torch.isfinite(out).all()
    assert not any(p.requires_grad for p in teacher.parameters())


def test_onboard_onnx_parity_nodata_and_int8(tiny_cloud_teacher, tmp_path):
    tmp, ds, folder = tiny_cloud_teacher
    fp32 = export_onboard(folder, tmp_path / "t.onnx", size=32)
    module, sensor = onboard_module(folder)
    assert sensor == "landsat8_l1"
    sess = session(fp32)
    tiles = [read_patch(ds.root, n)["dn"] for n in ds.names[:4]]
    dn = np.stack(tiles[:2])
    dn[:, :, :5, :] = 0  # a nodata band of rows
    got = run_mask(sess, dn)
    with torch.no_grad():
        ref = module(torch.from_numpy(dn.astype(np.float32))).numpy()
    assert got.dtype == np.uint8 and got.shape == (2, 32, 32)
    assert ((got == 255) == (dn == 0).all(1)).all() and (got[:, :5] == 255).all()
    assert set(np.unique(got)) <= {0, 1, 255}
    assert np.mean(got != ref) <= 1e-3
    expected_refl = 2e-5 * dn[0, :, 10, 10].astype(np.float64) - 0.1  # the graph's first step, by hand
    np.testing.assert_allclose(module.gain * dn[0, :, 10, 10] + module.offset, expected_refl, rtol=1e-6)
    int8 = quantize_int8(fp32, tmp_path / "t.int8.onnx", tiles)
    q = run_mask(session(int8), dn)
    assert q.shape == got.shape and (q[:, :5] == 255).all()
    import onnx

    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > ops.count("QuantizeLinear")
    assert "Cast" in ops and "ArgMax" in ops  # DN cast and mask post-processing stay in the graph


def test_int8_quantisation_keeps_the_console_quiet(tmp_path, caplog):
    """onnxruntime logs one root-logger warning per 1-D (normalisation) weight it cannot quantise per
    channel; the cloud demo printed 18 such lines. They are expected and stay off the console."""
    import io

    import onnx

    from mtdense.domains.clouds.onboard_export import uint16_input

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.norm, self.head = torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.GroupNorm(2, 8), torch.nn.Conv2d(8, 2, 1)

        def forward(self, dn):
            return self.head(torch.relu(self.norm(self.conv(dn.to(torch.float32) * 1e-4))))

    buffer = io.BytesIO()
    torch.onnx.export(Net().eval(), (torch.zeros(1, 4, 16, 16),), buffer, input_names=["dn"], dynamo=False)
    onnx.save(uint16_input(onnx.load_from_string(buffer.getvalue())), tmp_path / "m.onnx")
    tiles = [np.random.default_rng(i).integers(0, 20000, (4, 16, 16)).astype(np.uint16) for i in range(2)]
    quantize_int8(tmp_path / "m.onnx", tmp_path / "m.int8.onnx", tiles)
    assert not [r for r in caplog.records if "out-of-range" in r.getMessage()]
    assert (tmp_path / "m.int8.onnx").is_file()


class _FailsAfter(torch.utils.data.Dataset):
    """``dataset`` that raises on read number ``reads`` (an interrupted teacher training)."""

    def __init__(self, dataset, reads: int):
        self.dataset, self.left = dataset, reads

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt
        return self.dataset[i]


def test_teacher_training_records_a_validation_curve_and_resumes_bit_for_bit(tiny_cloud_teacher, tmp_path):
    from mtdense.domains.clouds.nnunet_like import train_nnunet_like

    _, ds, _ = tiny_cloud_teacher
    kw = dict(iterations=4, memory_gb=0.01, base_features=4, max_features=8, log_every=0, val_dataset=ds,
              validate_every=2, checkpoint_every=2)
    whole = train_nnunet_like(ds, tmp_path / "whole", **kw)
    curve = json.loads((whole / "training.json").read_text())["curve"]
    assert [p["iteration"] for p in curve] == [2, 4]
    assert all(0 <= p["val_jaccard"] <= 1 and p["val_dice"] == pytest.approx(2 * p["val_jaccard"] / (1 + p["val_jaccard"]))
               for p in curve)
    batch = json.loads((whole / "plan.json").read_text())["batch_size"]
    with pytest.raises(KeyboardInterrupt):  # the fingerprint reads every sample, then `batch` per iteration
        train_nnunet_like(_FailsAfter(ds, len(ds) + 2 * batch + 1), tmp_path / "cut", **kw)
    assert (tmp_path / "cut" / "resume.pt").is_file() and not (tmp_path / "cut" / "model.pt").exists()
    cut = train_nnunet_like(ds, tmp_path / "cut", **kw)
    assert not (cut / "resume.pt").exists()
    a = torch.load(whole / "model.pt", weights_only=True)
    b = torch.load(cut / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    resumed = json.loads((cut / "training.json").read_text())["curve"]
    drop = lambda c: [{k: v for k, v in p.items() if k != "cpu_seconds"} for p in c]  # noqa: E731
    assert drop(resumed) == drop(curve)  # the first point came from the interrupted run's resume.pt


def test_session_latency_is_the_calling_threads_cpu_time(tiny_cloud_teacher, tmp_path):
    """onnxruntime with 1 intra-op thread runs on the caller: process CPU time = thread CPU time, so
    the thread clock is the whole cost and a busy neighbour (wall time) does not inflate it."""
    from mtdense.domains.clouds.scene_eval import session_cost

    _, _, folder = tiny_cloud_teacher
    cost = session_cost(export_onboard(folder, tmp_path / "t.onnx", size=32), size=128, runs=5)
    assert cost["clock"] == "thread CPU" and cost["latency_ms"] > 0
    assert cost["process_cpu_ms"] == pytest.approx(cost["latency_ms"], rel=0.1, abs=0.5)
    assert cost["wall_ms"] >= 0.9 * cost["latency_ms"]


def test_train_teacher_command_validates_on_data_val(tiny_cloud_teacher, tmp_path):
    from mtdense.cli import main
    from mtdense.config import find_config

    tmp, _, _ = tiny_cloud_teacher
    root = tmp / "s" / "38-Cloud_training"
    assert main(["train-teacher", str(find_config("clouds/student.yaml")), "--out", str(tmp_path / "t"), "--iterations", "2",
                 "--memory-gb", "0.01", "--base-features", "4", "--max-features", "8", "--validate-every", "1",
                 f"data.train.root={root}", f"data.val.root={root}", "data.val.val_fraction=0.5",
                 "data.train.val_fraction=0.5"]) == 0
    curve = json.loads((tmp_path / "t" / "training.json").read_text())["curve"]
    assert [p["iteration"] for p in curve] == [1, 2] and not (tmp_path / "t" / "resume.pt").exists()


def test_session_peak_memory_is_the_sessions_not_the_parents(tiny_cloud_teacher, tmp_path):
    """The cost subprocess must not report its parent's resident size: Linux keeps ``ru_maxrss``
    across fork + exec, so a 1 GB parent made every model's session peak ≥ 1 GB (clouds_kd v1
    showed 318 MB for a 2,034-parameter student and for the teacher alike)."""
    from mtdense.domains.clouds.scene_eval import session_cost

    _, _, folder = tiny_cloud_teacher
    graph = export_onboard(folder, tmp_path / "t.onnx", size=32)
    ballast = np.ones(2**30 // 8)  # 1 GiB resident in this (the parent) process
    cost = session_cost(graph, size=128, runs=2)
    assert ballast[-1] == 1.0
    assert 0 < cost["peak_mb"] < 256
