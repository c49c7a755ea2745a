"""Worker processes (mattecli.parallel) and the classical `matte --workers` built on them."""
from __future__ import annotations

import json
import os

import numpy as np

from mattecli.io.images import read_raw, write_image
from mattecli.parallel import default_workers, ordered_map
from parallel_helpers import die_late, square_or_die
from test_matte import run_cli, scene


def test_ordered_map_keeps_order_survives_a_dead_worker_and_uses_processes():
    tasks = [(f"k{x}", x) for x in range(8)]
    got = list(ordered_map(square_or_die, tasks, workers=2, crashed=lambda key, exc: ("died", key)))
    assert [k for k, _ in got] == [k for k, _ in tasks]
    results = dict(got)
    assert results["k3"] == ("died", "k3")
    for x in (0, 1, 2, 4, 5, 6, 7):  # the others in flight when the worker died were run again
        assert results[f"k{x}"][0] == x * x
    pids = {results[f"k{x}"][1] for x in (0, 1, 2, 4, 5, 6, 7)}
    assert os.getpid() not in pids and len(pids) >= 2


def test_a_worker_dying_while_the_caller_is_busy_is_survived():
    """The caller takes its time over the first result; meanwhile a worker dies and breaks the pool,
    so the next task cannot even be submitted. That task joins the ones rerun, in order."""
    import time

    got = []
    for key, value in ordered_map(die_late, [(f"k{x}", x) for x in range(6)], workers=2,
                                  crashed=lambda key, exc: "died"):
        got.append((key, value))
        if key == "k0":
            time.sleep(1.5)  # the caller writes a file, say
    assert got == [("k0", 0), ("k1", "died"), ("k2", 4), ("k3", 9), ("k4", 16), ("k5", 25)]


def test_ordered_map_runs_a_single_task_or_one_worker_here():
    assert list(ordered_map(square_or_die, [("a", 5)], workers=4, crashed=None)) == [("a", (25, os.getpid()))]
    got = list(ordered_map(square_or_die, [("a", 1), ("b", 2)], workers=1, crashed=None))
    assert got == [("a", (1, os.getpid())), ("b", (4, os.getpid()))]
    assert default_workers(None, 3) == min(len(os.sched_getaffinity(0)), 3) and default_workers(8, 0) == 1
    assert default_workers(None) == len(os.sched_getaffinity(0)) and default_workers(5, 9) == 5


def test_matte_workers_give_the_same_files_and_report_bad_ones(tmp_path, capsys, monkeypatch):
    """Five images by clicks (the disk method): one unreadable (fails in this process), one with
    background clicks only (fails in a worker); the rest are byte-identical to an in-process run."""
    clicks = {}
    for i in range(5):
        write_image(tmp_path / "in" / f"{i}.png", scene(seed=i)[0])
        clicks[f"{i}.png"] = [{"x": 22, "y": 18, "label": "fg"}, {"x": 2, "y": 2, "label": "bg"}]
    (tmp_path / "in" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    clicks["3.png"] = [{"x": 2, "y": 2, "label": "bg"}]
    (tmp_path / "clicks.json").write_text(json.dumps(clicks))
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        code, err = run_cli([tmp_path / "in", "--clicks", tmp_path / "clicks.json", "--click-method", "disks",
                             "--out", out, "--output", "alpha", "--workers", workers], capsys, monkeypatch)
        flat = " ".join(err.split())
        assert code == 1 and "1.png" in flat and "3.png" in flat and "mark no foreground" in flat, flat
        assert "3 matted" in flat and "2 failed" in flat, flat
        assert ("2 processes" in flat) == (workers == "2"), flat
        outputs[workers] = {p.name: read_raw(p) for p in (out / "alpha").glob("*.png")}
    assert set(outputs["1"]) == set(outputs["2"]) == {"0.png", "2.png", "4.png"}
    for name, alpha in outputs["1"].items():
        assert 0 < alpha.mean() < 255
        np.testing.assert_array_equal(alpha, outputs["2"][name])


def test_matte_workers_refused_with_weights(tmp_path, capsys, monkeypatch):
    img, _, tri = scene()
    write_image(tmp_path / "a.png", img)
    code, err = run_cli([tmp_path / "a.png", "--trimap", tmp_path / "a.png", "--out", tmp_path / "o",
                         "--weights", tmp_path / "net.pt", "-j", "2"], capsys, monkeypatch)
    assert code == 2 and err.strip().count("\n") == 0 and "--workers applies only with the classical method" in err
