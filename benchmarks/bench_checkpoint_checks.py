"""What the checkpoint safety checks cost (issue 18; docs/limits.md, "Checkpoints").

Saves a DIM checkpoint of the default config (26 M parameters, about 105 MB), then times
``mattecli.io.checkpoint.load_checkpoint`` with the checks (zip CRCs and declared sizes,
the structure walk) and with them replaced by no-ops, alternately, so both see the same
machine load; prints the minimum of each.

    python benchmarks/bench_checkpoint_checks.py [--runs 6] [--file /tmp/bench-dim.pt]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from mattecli.families.registry import build_model
from mattecli.io import checkpoint as ck
from mattecli.io.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--file", default="/tmp/bench-dim.pt")
    args = parser.parse_args()
    if not os.path.exists(args.file):
        torch.manual_seed(0)
        save_checkpoint(args.file, {"family": "dim", "model_config": {}, "model": build_model("dim", {}).state_dict()})
    print(f"checkpoint {os.path.getsize(args.file) / 1e6:.1f} MB")
    checks = ck.check_container, ck.check_structure
    timings: dict[str, list[float]] = {"with checks": [], "without": []}
    try:
        for _ in range(args.runs):
            for label in timings:
                if label == "with checks":
                    ck.check_container, ck.check_structure = checks
                else:
                    ck.check_container, ck.check_structure = (lambda path: None), (lambda path, obj: None)
                start = time.perf_counter()
                load_checkpoint(args.file)
                timings[label].append(time.perf_counter() - start)
    finally:
        ck.check_container, ck.check_structure = checks
    for label, values in timings.items():
        print(f"load_checkpoint {label}: min {min(values):.3f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
