"""DIM network cost per conv6 variant, and how fast it learns from scratch with/without BN.

Run by hand (not a test):  python benchmarks/bench_dim_model.py [--size 320] [--device cpu] [--repeats 5]
Prints parameters, seconds per encoder-stage training step (batch 1, size x size, Adam) and
per predict call (each after --warmup untimed calls, then --repeats timed ones: median and
spread min-max), then the loss after N Adam steps on one small fixed sample from scratch.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from mattecli.families.dim.model import DeepImageMatting
from mattecli.families.dim.family import FAMILY


def _batch(size: int, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    xx = torch.arange(size).float().expand(size, size)
    alpha = ((xx - size / 2) / (size / 8)).sigmoid()[None, None]
    trimap = torch.full((1, 1, size, size), 128, dtype=torch.uint8)
    trimap[alpha < 0.02], trimap[alpha > 0.98] = 0, 255
    fg = torch.rand(1, 3, 1, 1, generator=g).expand(1, 3, size, size)
    bg = torch.rand(1, 3, size, size, generator=g)
    batch = {"image": alpha * fg + (1 - alpha) * bg, "alpha": alpha, "fg": fg.contiguous(), "bg": bg, "trimap": trimap}
    return {k: v.to(device) for k, v in batch.items()}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _timed(fn, device: str, warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return times


def _spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.3f} s (min {min(times):.3f}, max {max(times):.3f}, n={len(times)})"


def cost(size: int, device: str, warmup: int, repeats: int) -> None:
    batch = _batch(size, device)
    for conv6 in ("1x1", "3x3", "fc6"):
        torch.manual_seed(0)
        net = DeepImageMatting(conv6=conv6).to(device)
        params = list(FAMILY.trainable_parameters(net, "encoder"))
        opt = torch.optim.Adam(params, lr=1e-5)
        net.train()

        def step() -> None:
            loss = FAMILY.losses(net, batch, "encoder")["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()

        train_times = _timed(step, device, warmup, repeats)
        net.eval()
        guidance = torch.full_like(batch["alpha"], 0.5)
        predict_times = _timed(lambda: net.predict(batch["image"], guidance), device, warmup, repeats)
        n = sum(p.numel() for p in net.parameters()) / 1e6
        print(f"conv6={conv6}: {n:.1f} M parameters; train step {size}x{size} batch 1: {_spread(train_times)}; "
              f"predict: {_spread(predict_times)}", flush=True)


def from_scratch(device: str, steps: int = 10, size: int = 64) -> None:
    batch = _batch(size, device)
    for batch_norm, lr in ((False, 1e-4), (False, 1e-3), (True, 1e-3)):
        torch.manual_seed(0)
        net = DeepImageMatting(batch_norm=batch_norm).to(device).train()
        opt = torch.optim.Adam(list(FAMILY.trainable_parameters(net, "encoder")), lr=lr)
        losses = []
        for _ in range(steps):
            loss = FAMILY.losses(net, batch, "encoder")["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        print(f"from scratch, batch_norm={batch_norm}, Adam lr {lr:g}, {steps} steps on one {size}x{size} sample: "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls before timing")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls (median and min-max reported)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; torch {torch.__version__}")
    cost(args.size, args.device, args.warmup, args.repeats)
    from_scratch(args.device)


if __name__ == "__main__":
    main()
