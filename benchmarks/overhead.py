"""Framework overhead: one training step of an mtdense-assembled two-task U-Net versus a
hand-written plain-PyTorch model of identical architecture, on the same data, in the same
process, with interleaved repetitions (machines are noisy; only the ratio is meaningful).

Also reports the achieved fraction of this CPU's measured matmul peak (FLOPs of a training
step counted with torch.utils.flop_counter, divided by step time, divided by the GFLOP/s of a
large float32 matmul measured in the same run).

    python benchmarks/overhead.py [--reps 30] [--size 128] [--batch 8] [--threads N] [--precision auto]
writes benchmarks/results/overhead.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from mtdense.config import from_dict
from mtdense.engine.trainer import Trainer

WIDTH, DEPTH, CLASSES = 16, 4, 3
LOG_EVERY = 10  # trainer.log_every_steps default


# ----------------------------------------------------------------- hand-written twin
def conv_block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PlainDecoder(nn.Module):
    def __init__(self, widths):
        super().__init__()
        rev = widths[::-1]
        self.blocks = nn.ModuleList(conv_block(rev[i] + rev[i + 1], rev[i + 1]) for i in range(len(rev) - 1))

    def forward(self, feats):
        x = feats[-1]
        for i, block in enumerate(self.blocks):
            skip = feats[-2 - i]
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return x


class PlainTwoTaskUNet(nn.Module):
    def __init__(self, in_ch):
        super().__init__()
        widths = [WIDTH * 2**i for i in range(DEPTH)]
        self.enc = nn.ModuleList()
        prev = in_ch
        for i, w in enumerate(widths):
            self.enc.append(nn.Sequential(nn.MaxPool2d(2) if i else nn.Identity(), conv_block(prev, w)))
            prev = w
        self.dec_seg, self.dec_reg = PlainDecoder(widths), PlainDecoder(widths)

        def head(out):
            return nn.Sequential(nn.Conv2d(WIDTH, WIDTH, 3, padding=1, bias=False), nn.BatchNorm2d(WIDTH),
                                 nn.ReLU(inplace=True), nn.Conv2d(WIDTH, out, 1))

        self.head_seg, self.head_reg = head(CLASSES), head(1)

    def forward(self, x):
        feats = []
        for level in self.enc:
            x = level(x)
            feats.append(x)
        return self.head_seg(self.dec_seg(feats)), self.head_reg(self.dec_reg(feats))


def plain_step(model, opt, batch, runtime):
    """The hand-written step in the same precision and memory format as the mtdense side."""
    image = batch["image"].contiguous(memory_format=torch.channels_last) if runtime.channels_last else batch["image"]
    with runtime.autocast():
        seg, reg = model(image)
    seg, reg = seg.float(), reg.float()
    valid_s, valid_r = batch["valid"]["semantic"], batch["valid"]["height"]
    target = torch.where(valid_s, batch["targets"]["semantic"], -100)
    loss_s = F.cross_entropy(seg, target, ignore_index=-100)
    err = (F.softplus(reg[:, 0]) - batch["targets"]["height"]).abs()
    loss_r = (err * valid_r).sum() / valid_r.sum()
    (loss_s + loss_r).backward()
    opt.step()
    opt.zero_grad(set_to_none=True)


# ----------------------------------------------------------------- measurement
def matmul_gflops(n=2048, reps=5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--precision", default="auto", help="trainer.precision for both sides (auto, fp32, bf16)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "overhead.md"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = from_dict({
        "seed": 0,
        "data": {"train": {"type": "synthetic_shapes", "length": args.batch, "size": [args.size, args.size], "channels": 9},
                 "batch_size": args.batch},
        "model": {"backbone": {"type": "unet_encoder", "width": WIDTH, "depth": DEPTH}, "decoder": {"type": "unet"},
                  "head": {"type": "conv"}},
        "tasks": {"semantic": {"type": "segmentation", "num_classes": CLASSES},
                  "height": {"type": "regression", "target": "height", "activation": "softplus", "loss": "l1", "metrics": []}},
        "trainer": {"out_dir": "/tmp/mtdense_overhead", "schedule": "constant", "weight_decay": 0.0, "deterministic": False,
                    "precision": args.precision},
        "logging": {"loggers": []},
    })
    trainer = Trainer(cfg)
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, lambda s: 1.0)
    batch = next(iter(trainer._loader("train", shuffle=True)))

    runtime = trainer.runtime
    plain = runtime.prepare_model(PlainTwoTaskUNet(9))
    plain_opt = torch.optim.AdamW(plain.parameters(), lr=1e-3, weight_decay=0.0)
    n_ours = sum(p.numel() for p in trainer.model.parameters())
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_ours == n_plain, f"architectures differ: {n_ours} vs {n_plain} parameters"

    with FlopCounterMode(display=False) as counter:
        plain_step(plain, plain_opt, batch, runtime)
    step_flops = counter.get_total_flops()

    load = os.getloadavg()[0]
    for _ in range(3):  # warm-up both
        trainer.check_finite(trainer.train_step([batch]))
        plain_step(plain, plain_opt, batch, runtime)
    t_ours, t_plain = [], []
    for rep in range(args.reps):
        t = time.perf_counter()
        logged = trainer.train_step([batch])
        if rep % LOG_EVERY == LOG_EVERY - 1:  # what fit does: one host sync per logging interval
            trainer.check_finite(logged)
        t_ours.append(time.perf_counter() - t)
        t = time.perf_counter()
        plain_step(plain, plain_opt, batch, runtime)
        t_plain.append(time.perf_counter() - t)
    peak = matmul_gflops()
    med_o, med_p = statistics.median(t_ours), statistics.median(t_plain)
    ratios = sorted(o / p for o, p in zip(t_ours, t_plain))
    achieved = step_flops / med_o / 1e9
    lines = [
        "# Framework overhead: mtdense train step vs hand-written PyTorch",
        "",
        f"Protocol: two-task U-Net (unet_encoder width {WIDTH}, depth {DEPTH}, two U-Net decoders, conv heads; "
        f"{n_ours:,} parameters each), 9 input channels, batch {args.batch}, {args.size}×{args.size}, "
        f"trainer.precision={args.precision} → {runtime.precision}"
        f"{' autocast' if runtime.precision != 'fp32' else ''}{' + channels_last' if runtime.channels_last else ''} "
        f"on both sides, AdamW; "
        f"segmentation CE + masked L1 regression on synthetic data. {args.reps} interleaved repetitions after 3 warm-up "
        f"steps, same process, same batch. mtdense side = `Trainer.train_step` (task losses with validity masks, "
        f"fixed-weight balancer, scheduler, losses kept on the device, the finite-loss check with its one host "
        f"synchronisation every {LOG_EVERY} steps as in `fit`).",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread(s), "
        f"torch {torch.__version__}; 1-minute load average when the measurement started: {load:.1f} "
        f"({os.cpu_count()} cores; other jobs widen the percentile band, the interleaving keeps the ratio fair).",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| mtdense step, median | {med_o * 1e3:.1f} ms |",
        f"| plain PyTorch step, median | {med_p * 1e3:.1f} ms |",
        f"| **ratio mtdense/plain, median of per-rep ratios** | **{statistics.median(ratios):.3f}** (target ≤ 1.03) |",
        f"| ratio, 10th–90th percentile | {ratios[len(ratios) // 10]:.3f} – {ratios[(9 * len(ratios)) // 10]:.3f} |",
        f"| training-step FLOPs (flop_counter, fwd+bwd) | {step_flops / 1e9:.2f} GFLOP |",
        f"| achieved | {achieved:.1f} GFLOP/s |",
        f"| measured fp32 matmul peak (2048², best of 5) | {peak:.1f} GFLOP/s |",
        f"| **fraction of fp32 peak** | **{achieved / peak:.1%}** |",
        "",
        "The fraction of peak is reported so that changes to the engine or the model code that move it are visible.",
    ]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
