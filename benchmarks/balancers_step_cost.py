"""Extra time per training step of every registered balancer, relative to "fixed".

A small synthetic two-task conv model (shared encoder/decoder, a 3-class segmentation head
and a regression head) is trained on CPU with every balancer in the same process. The
balancers are interleaved: each repetition times a few steps of every balancer in a rotated
order, so slow drifts of a shared machine hit all of them alike. The extra cost of a
balancer is the median over repetitions of (its step time - the step time of "fixed" in the
same repetition). The primary clock is the process CPU time with one torch thread: on a
machine shared with other jobs it measures the work a step costs, while wall time also
measures the waiting for a core (reported too, for reference).

    PYTHONPATH=. python benchmarks/balancers_step_cost.py [--reps 20] [--batch 8] [--size 64]

Writes benchmarks/results/balancers_step_cost.md.
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

from mtdense.registry import BALANCERS

TASKS = ["seg", "rain"]


class TwoTaskConvNet(nn.Module):
    """Shared conv encoder + decoder, one 1x1-conv head per task."""

    def __init__(self, width: int = 32):
        super().__init__()

        def block(cin, cout, stride=1):
            return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.shared = nn.Sequential(
            *block(3, width, 2), *block(width, 2 * width, 2), *block(2 * width, 2 * width),
            nn.Upsample(scale_factor=4, mode="bilinear"), *block(2 * width, width),
        )
        self.heads = nn.ModuleDict({"seg": nn.Conv2d(width, 3, 1), "rain": nn.Conv2d(width, 1, 1)})

    def forward(self, x):
        h = self.shared(x)
        return {t: head(h) for t, head in self.heads.items()}


def synthetic_batch(batch: int, size: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.randn(batch, 3, size, size, generator=g)
    rain = F.softplus(image[:, :1] * 2.0)  # synthetic: a smooth function of the image
    seg = (image[:, 1] > 0).long() + (image[:, 2] > 1).long()
    return image, {"seg": seg, "rain": rain}


def train_step(model, balancer, optimizer, image, targets):
    optimizer.zero_grad(set_to_none=True)
    preds = model(image)
    losses = {
        "seg": F.cross_entropy(preds["seg"], targets["seg"]),
        "rain": F.mse_loss(preds["rain"], targets["rain"]),
    }
    shared = list(model.shared.parameters())
    balancer.backward(losses, shared)
    balancer.finalize(shared)
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20, help="interleaved repetitions")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per balancer per repetition")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=64, help="image height = width")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/balancers_step_cost.md"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    names = BALANCERS.names()
    image, targets = synthetic_batch(args.batch, args.size)
    runs = {}
    for name in names:
        torch.manual_seed(0)
        model = TwoTaskConvNet()
        runs[name] = (model, BALANCERS.build({"type": name}, tasks=TASKS), torch.optim.SGD(model.parameters(), lr=0.01))
        for _ in range(2):  # warm-up (allocator, lazy imports such as scipy)
            train_step(*runs[name], image, targets)

    times = {name: [] for name in names}  # CPU ms per step
    walls = {name: [] for name in names}  # wall-clock ms per step
    for rep in range(args.reps):
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(args.steps):
                train_step(*runs[name], image, targets)
            times[name].append((time.process_time() - cpu) / args.steps * 1e3)
            walls[name].append((time.perf_counter() - wall) / args.steps * 1e3)

    model = runs["fixed"][0]
    n_shared = sum(p.numel() for p in model.shared.parameters())
    n_total = sum(p.numel() for p in model.parameters())
    base = statistics.median(times["fixed"])
    rows = []
    for name in sorted(names, key=lambda n: statistics.median(times[n])):
        extra = [t - f for t, f in zip(times[name], times["fixed"])]
        kind = "gradient" if runs[name][1].reduces_gradients else "loss weighting"
        q = statistics.quantiles(times[name], n=4)
        rows.append(
            f"| {name} | {kind} | {statistics.median(times[name]):.1f} | {q[0]:.1f}–{q[2]:.1f} | "
            f"{statistics.median(extra):+.1f} | {statistics.median(times[name]) / base:.2f} | "
            f"{statistics.median(walls[name]):.1f} |"
        )
    load = os.getloadavg()
    text = "\n".join(
        [
            "# Balancer step cost (CPU)",
            "",
            "Extra time per training step of each balancer relative to `fixed` (equal weights).",
            "Produced by `benchmarks/balancers_step_cost.py`; synthetic data.",
            "",
            f"- machine: {os.cpu_count()} CPU cores, {args.threads} torch thread(s), {platform.processor() or platform.machine()}, "
            f"torch {torch.__version__}; load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} "
            "(shared with other jobs: times are process CPU time, wall time only for reference)",
            f"- model: shared conv encoder/decoder ({n_shared:,} shared parameters, {n_total:,} in total), "
            "heads: 3-class segmentation (cross-entropy) + regression (MSE)",
            f"- batch {args.batch} × 3 × {args.size} × {args.size}, SGD, one micro-batch per step, "
            "step = forward + balancer.backward + finalize + optimizer.step",
            f"- {args.reps} interleaved repetitions × {args.steps} timed steps per balancer (rotated order), after 2 warm-up steps",
            "",
            "| balancer | kind | CPU per step, median [ms] | IQR [ms] | extra vs fixed [ms] (median of paired differences) | × fixed | wall per step, median [ms] |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Differences of a few ms (within the IQR) are noise: even CPU time varies with cache "
            "contention on a shared machine. Gradient methods pay one extra backward pass through the "
            "shared layers per additional task; GradNorm pays T gradients of its last shared layer.",
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
