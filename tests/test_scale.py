"""Beyond one machine (docs/scale.md): shards run as separate processes, and torchrun across two nodes.

Shards are started as concurrent processes into one output folder, as a scheduler's job array starts
them, and must leave exactly the files (bytes included) of one unsharded run. The two torchrun
"nodes" are two torchrun agents on 127.0.0.1 meeting through the c10d rendezvous.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from compose_helpers import tree_digest
from mattecli.data.samples import write_samples

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def mattecli(*args: object) -> list[str]:
    return [sys.executable, "-m", "mattecli", *map(str, args)]


def run_together(commands: list[list[str]], timeout: float = 240) -> list[str]:
    """Start every command at once (a job array's tasks), wait for all, fail with the first error."""
    procs = [subprocess.Popen(c, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in commands]
    outputs = [p.communicate(timeout=timeout)[0] for p in procs]
    for command, proc, output in zip(commands, procs, outputs):
        assert proc.returncode == 0, f"{' '.join(command[2:])}:\n{output[-3000:]}"
    return outputs


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("scale")
    write_samples(root / "src", seed=5, foregrounds=4, backgrounds=5, size=(96, 72))
    return root


def compose_args(src: Path, out: Path, *extra: object) -> list[str]:
    return mattecli("compose", "--fg", src / "fg", "--alpha", src / "alpha", "--bg", src / "bg", "--out", out,
                    "--per-fg", 2, "--trimaps", "--trimap-iterations", "1-3", "--plates", "--workers", 1, "-q", *extra)


def test_compose_shards_as_parallel_processes_make_the_files_of_one_run(small_inputs):
    src = small_inputs / "src"
    run_together([compose_args(src, small_inputs / "one")])
    run_together([compose_args(src, small_inputs / "sharded", "--shard", f"{i}/2") for i in (1, 2)])
    one = tree_digest(small_inputs / "one")
    assert len([k for k in one if k.startswith("merged/")]) == 8
    assert tree_digest(small_inputs / "sharded") == one  # manifest.json included, byte for byte
    # each shard made its own half: a rerun of one shard finds everything there and writes nothing
    rerun = subprocess.run(compose_args(src, small_inputs / "sharded", "--shard", "2/2"), env=ENV,
                           capture_output=True, text=True, timeout=240)
    summary = " ".join(rerun.stderr.replace("│", " ").split())  # the summary table is on the console (stderr)
    assert rerun.returncode == 0 and "already done (skipped) 4 written now 0" in summary, summary
    assert tree_digest(small_inputs / "sharded") == one


def test_matte_shards_as_parallel_processes_make_the_files_of_one_run(small_inputs):
    data = small_inputs / "one"
    if not (data / "manifest.json").is_file():
        run_together([compose_args(small_inputs / "src", data)])

    def matte(out: Path, *extra: object) -> list[str]:
        return mattecli("matte", data / "merged", "--trimap", data / "trimap", "--out", out,
                        "--output", "alpha,rgba", *extra)

    run_together([matte(small_inputs / "m_one")])
    run_together([matte(small_inputs / "m_sharded", "--shard", f"{i}/3") for i in (1, 2, 3)])
    one = tree_digest(small_inputs / "m_one")
    assert len(one) == 16 and set(one) == {f"{kind}/{name}" for kind in ("alpha", "rgba")
                                           for name in (p.name for p in (data / "merged").iterdir())}
    assert tree_digest(small_inputs / "m_sharded") == one


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_nodes_with_c10d_rendezvous_train_and_write_one_checkpoint(small_inputs, tmp_path):
    """`torchrun --nnodes 2` twice on 127.0.0.1 (the two nodes), c10d rendezvous, gloo on CPU."""
    from mattecli.io.checkpoint import load_checkpoint

    data = small_inputs / "one"
    if not (data / "manifest.json").is_file():
        run_together([compose_args(small_inputs / "src", data)])
    run = tmp_path / "run"
    endpoint = f"127.0.0.1:{free_port()}"
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "scale-test",
            "-m", "mattecli", "train", "bgm", "--data", str(data), "--out", str(run), "--recipe", "bgm-quick",
            "--iters", "2", "--device", "cpu", "--no-progress", "--print-every", "1"]
    for kv in ("ngf=4", "nf_part=4", "n_blocks1=1", "n_blocks2=1", "input_size=32", "crop_sizes=[32, 40]",
               "base_size=0", "batch_size=1", "workers=0", "trimap_iterations=[1, 3]", "cue_scale=0.0625",
               "val_every=0", "checkpoint_every=1"):
        node += ["--set", kv]
    outputs = run_together([node, node], timeout=300)
    # --no-progress --print-every 1: rank 0 prints one loss line per step
    assert sum(out.count("bgm adobe step 2/2 loss ") for out in outputs) == 1, outputs
    ckpt = load_checkpoint(run / "adobe" / "last.pt")
    assert ckpt["step"] == 2 and ckpt["family"] == "bgm"
    summary = json.loads((run / "adobe" / "summary.json").read_text())
    assert summary["world_size"] == 2
    # one writer: rank 0's files only (no per-rank or temporary checkpoints left behind)
    assert sorted(p.name for p in (run / "adobe").iterdir() if p.suffix == ".pt") == ["best.pt", "last.pt"]
    assert sorted(p.name for p in run.iterdir() if p.suffix == ".pt") == ["best.pt"]
