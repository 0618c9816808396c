"""Two processes through torchrun on the CPU (gloo): DDP training, rank 0 alone writes the record."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.test_main import GLYPHS_TINY, ROOT


def test_torchrun_two_ranks_train_and_record_once(tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [torchrun, "--standalone", "--nproc_per_node", "2", "main.py", "--dataset", "glyphs",
           "--source_path", str(tmp_path / "data"), *GLYPHS_TINY,
           "--save_path", str(tmp_path / "runs"), "--project", "p", "--group", "ddp",
           "--arch", "smallnet_normalize", "--not_pretrained", "--embed_dim", "16", "--bs", "32",
           "--samples_per_class", "4", "--lr", "1e-3", "--n_epochs", "2", "--iters_per_epoch", "2",
           "--kernels", "0", "--loss", "proxynca", "--no_train_metrics",
           "--evaluation_metrics", "e_recall@1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("selection rule:") == 1          # only rank 0 reports
    folder = tmp_path / "runs" / "p" / "ddp_s1"
    rows = [json.loads(line) for line in open(folder / "metrics.jsonl")]
    tests = [r["epoch"] for r in rows if r["split"] == "test"]
    assert tests == [0, 1, 2]
    loops = [r for r in rows if r["split"] == "train_loop"]
    assert [r["iterations"] for r in loops] == [2, 2]
    assert json.load(open(folder / "summary.json"))["finished"]
