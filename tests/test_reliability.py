"""Issue 14, row by row: each failure mode of a run folder gets one line and a way forward; no
checkpoint runs code; divergence stops the run without overwriting ``last.pt``; signals stop it at a
safe point with the command that resumes; a finished run can be extended."""

from __future__ import annotations

import errno
import json
import os
import signal
import stat

import pytest
import torch

import main
import training
from runrecord import RunRecord, faults
from runrecord.files import explain, write_json_atomic
from tests.test_main import rows, run_dir
from tests.test_main import tiny_args as full_args
from tests.test_resume_faults import run_forked


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("main.py: error: ")
    assert len(err[0].split(" resume with: ")[0]) < 400
    return err[0]


def tiny_args(tmp_path, *extra: str, epochs: int = 2) -> list[str]:
    """test_main's run, cheaper: two batches an epoch, R@1 on val and test only."""
    return full_args(
        tmp_path,
        "--iters_per_epoch",
        "2",
        "--no_train_metrics",
        "--evaluation_metrics",
        "e_recall@1",
        *extra,
        epochs=epochs,
    )


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> list[dict]:
    """The metric rows of an uninterrupted 3-epoch run (forked, one thread, as the others)."""
    root = tmp_path_factory.mktemp("straight")
    assert run_forked(tiny_args(root, epochs=3)) == 0
    return strip_times(rows(root))


def load_json(root, name: str) -> dict:
    with open(os.path.join(run_dir(root), name)) as f:
        return json.load(f)


def strip_times(row_list):
    return [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in row_list]


def stop_at(epoch: int, monkeypatch):
    """train_one_epoch raises KeyboardInterrupt at ``epoch`` (as Ctrl-C would)."""
    real = training.train_one_epoch

    def stop(*args, **kwargs):
        if kwargs["epoch"] == epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "train_one_epoch", stop)
    return real


class Evil:
    """Unpickling this would create a file."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_crafted_checkpoint_does_not_run_code(tmp_path, capsys, monkeypatch):
    stop_at(2, monkeypatch)
    assert main.main(tiny_args(tmp_path, epochs=2)) == 130
    marker = tmp_path / "pwned"
    last = os.path.join(run_dir(tmp_path), "checkpoints", "last.pt")
    prev = os.path.join(run_dir(tmp_path), "checkpoints", "last.prev.pt")
    for path in (last, prev):
        torch.save({"epoch": Evil(str(marker))}, path)
    capsys.readouterr()
    assert main.main(tiny_args(tmp_path, epochs=2)) == 2
    assert not marker.exists()
    line = one_error_line(capsys)
    assert "no readable checkpoint" in line and "other than plain data" in line


@pytest.mark.parametrize("damage", ["truncate", "empty", "garbage"])
def test_unreadable_last_falls_back_to_the_previous_one(tmp_path, damage, straight):
    stopped = tmp_path / "stopped"
    assert run_forked(tiny_args(stopped, epochs=3), "step:5") == faults.FAULT_EXIT  # in epoch 3
    last = os.path.join(run_dir(stopped), "checkpoints", "last.pt")
    with open(last, "rb") as f:
        data = f.read()
    with open(last, "wb") as f:
        f.write(
            {"truncate": data[: len(data) // 2], "empty": b"", "garbage": os.urandom(len(data))}[
                damage
            ]
        )
    output = str(tmp_path / "out.txt")
    assert run_forked(tiny_args(stopped, epochs=3), output=output) == 0
    with open(output) as f:
        out = f.read()
    assert "note: last.pt is unreadable" in out and "resuming from last.prev.pt (epoch 1)" in out
    assert "Traceback" not in out
    assert strip_times(rows(stopped)) == straight


def test_torn_summary_and_config_are_one_line_notes(tmp_path, capsys, monkeypatch):
    real = stop_at(2, monkeypatch)
    assert main.main(tiny_args(tmp_path, epochs=2)) == 130
    monkeypatch.setattr(training, "train_one_epoch", real)
    for name in ("summary.json", "config.json"):
        with open(os.path.join(run_dir(tmp_path), name), "w") as f:
            f.write('{"finished": tr')
    capsys.readouterr()
    assert main.main(tiny_args(tmp_path, epochs=2)) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and "JSONDecodeError" not in captured.err
    notes = [line for line in captured.out.splitlines() if line.startswith("note:")]
    assert len(notes) == 2 and all("is not valid JSON" in n for n in notes)
    assert load_json(tmp_path, "summary.json")["finished"]
    # the torn config was checked against the checkpoint's copy, and rewritten
    assert load_json(tmp_path, "config.json")["embed_dim"] == 16


@pytest.mark.parametrize("where", ["proc", "file"])
def test_unusable_save_path_is_one_line_and_writes_nothing(tmp_path, capsys, where):
    if where == "file":
        (tmp_path / "afile").write_text("x")
        save = str(tmp_path / "afile")
    else:
        save = "/proc/foo"
    args = tiny_args(tmp_path, epochs=1)
    args[args.index("--save_path") + 1] = save
    assert main.main(args) == 2
    line = one_error_line(capsys)
    assert save in line
    assert ("not a directory (ENOTDIR)" in line) if where == "file" else "(E" in line


def test_errno_meanings_are_named():
    for code, text in (
        (errno.EROFS, "read-only file system (EROFS)"),
        (errno.EACCES, "permission denied (EACCES)"),
        (errno.ENOSPC, "no space left on device (ENOSPC)"),
    ):
        assert str(explain(OSError(code, "x"), "/runs/a")) == f"cannot write /runs/a: {text}"


def test_disk_full_while_checkpointing_is_named(tmp_path, capsys, monkeypatch):
    import runrecord.record as record_module

    def full(tmp, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(record_module, "write_bytes", full)
    assert main.main(tiny_args(tmp_path, epochs=1)) == 1
    line = one_error_line(capsys)
    assert "no space left on device (ENOSPC)" in line and "checkpoints" in line
    leftovers = [
        n
        for n in os.listdir(os.path.join(run_dir(tmp_path), "checkpoints"))
        if n.startswith(".tmp")
    ]
    assert leftovers == []


def test_too_little_free_space_is_refused_before_writing(tmp_path, capsys, monkeypatch):
    real = os.statvfs

    class Tiny:
        def __init__(self, path):
            self.f_frsize, self.f_bavail = real(path).f_frsize, 1

    monkeypatch.setattr(os, "statvfs", Tiny)
    assert main.main(tiny_args(tmp_path, epochs=1)) == 2
    assert "no space left on device (ENOSPC)" in one_error_line(capsys)
    assert not (tmp_path / "runs").exists()


def test_atomic_writes_honour_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json_atomic(str(tmp_path / "a.json"), {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644


def test_embed_dim_0_fails_first_and_leaves_nothing(tmp_path, capsys):
    args = tiny_args(tmp_path, epochs=1)
    args[args.index("--embed_dim") + 1] = "0"
    with pytest.raises(SystemExit) as exit_:
        main.main(args)
    assert exit_.value.code == 2
    assert "--embed_dim must be >= 1, got 0" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "runs").exists()
    assert main.main(tiny_args(tmp_path, epochs=1)) == 0


def test_a_run_killed_before_its_first_checkpoint_does_not_block_other_settings(tmp_path):
    assert run_forked(tiny_args(tmp_path, epochs=1), "split_evaluated:2") == faults.FAULT_EXIT
    assert os.path.exists(os.path.join(run_dir(tmp_path), "config.json"))
    assert run_forked(tiny_args(tmp_path, "--loss_margin_beta", "0.6", epochs=1)) == 0
    config = load_json(tmp_path, "config.json")
    assert config["loss_margin_beta"] == 0.6


def test_a_locked_run_folder_names_the_other_process(tmp_path, capsys):
    opt = main.parameters.parse_args(tiny_args(tmp_path, epochs=1))
    other = RunRecord(opt)
    other.lock("python main.py --the other one")
    try:
        assert main.main(tiny_args(tmp_path, epochs=1)) == 2
        line = one_error_line(capsys)
        assert f"in use by another process (pid {os.getpid()} on " in line
        assert "python main.py --the other one" in line
        assert not os.path.exists(os.path.join(run_dir(tmp_path), "metrics.jsonl"))
    finally:
        other.close()
    assert main.main(tiny_args(tmp_path, epochs=1)) == 0


def test_nonfinite_loss_skips_the_step_and_names_the_batch(tmp_path, capsys, monkeypatch):
    from criteria.margin import Margin

    real = Margin.forward
    calls = {"n": 0}

    def sometimes_nan(self, embeds, labels):
        calls["n"] += 1
        out = real(self, embeds, labels)
        return out * float("nan") if calls["n"] == 2 else out

    monkeypatch.setattr(Margin, "forward", sometimes_nan)
    assert main.main(tiny_args(tmp_path, epochs=2)) == 0
    out = capsys.readouterr().out
    assert "epoch 1, batch 1: loss nan; step skipped (1 of at most 10" in out
    loops = [r for r in rows(tmp_path) if r["split"] == "train_loop"]
    assert [r["iterations"] for r in loops] == [1, 2] and loops[0]["skipped_steps"] == 1
    state = torch.load(os.path.join(run_dir(tmp_path), "checkpoints", "last.pt"), weights_only=True)
    assert state["nonfinite_steps"] == 1


def test_too_many_nonfinite_steps_stop_the_run_and_keep_last(tmp_path, capsys, monkeypatch):
    from criteria.margin import Margin

    real = Margin.forward
    monkeypatch.setattr(
        Margin, "forward", lambda self, e, labels: real(self, e, labels) * float("inf")
    )
    assert main.main(tiny_args(tmp_path, "--max_nonfinite_steps", "2", epochs=2)) == 1
    line = one_error_line(capsys)
    assert line.startswith("main.py: error: training diverged: 2 non-finite steps")
    state = torch.load(os.path.join(run_dir(tmp_path), "checkpoints", "last.pt"), weights_only=True)
    assert state["epoch"] == 0


def test_huge_lr_with_batchnorm_does_not_finish_silently(tmp_path, capsys):
    args = tiny_args(tmp_path, "--optim", "sgd", "--iters_per_epoch", "20", epochs=4)
    args[args.index("--lr") + 1] = "1e9"
    assert main.main(args) == 1
    assert "training diverged" in one_error_line(capsys)
    state = torch.load(os.path.join(run_dir(tmp_path), "checkpoints", "last.pt"), weights_only=True)
    for name, value in state["model"].items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), name


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_at_a_safe_point_with_the_resume_command(tmp_path, capsys, monkeypatch, sig):
    import runrecord.record as record_module

    real = record_module.RunRecord.save_checkpoint
    sent = []

    def signal_during_checkpoint(self, name, state, keep_previous=False):
        if name == "last" and state["epoch"] == 1 and not sent:
            sent.append(sig)
            os.kill(os.getpid(), sig)  # arrives inside the critical block: deferred
        return real(self, name, state, keep_previous)

    monkeypatch.setattr(record_module.RunRecord, "save_checkpoint", signal_during_checkpoint)
    assert main.main(tiny_args(tmp_path, epochs=3)) == 128 + sig
    line = one_error_line(capsys)
    assert f"stopped by {signal.Signals(sig).name} (checkpoint of epoch 1 in " in line
    assert line.endswith("resume with: " + main.command_line(tiny_args(tmp_path, epochs=3)))
    state = torch.load(os.path.join(run_dir(tmp_path), "checkpoints", "last.pt"), weights_only=True)
    assert state["epoch"] == 1  # the checkpoint in progress was completed


def test_a_finished_run_is_extended_by_a_larger_n_epochs(tmp_path, straight):
    extended = tmp_path / "extended"
    assert run_forked(tiny_args(extended, epochs=2)) == 0
    output = str(tmp_path / "out.txt")
    assert run_forked(tiny_args(extended, epochs=3), output=output) == 0
    with open(output) as f:
        assert "extending" in f.read()
    assert strip_times(rows(extended)) == straight
    summary = load_json(extended, "summary.json")
    assert summary["finished"] and summary["last_epoch"] == 3


def test_a_resumed_run_does_not_send_an_epoch_to_wandb_twice(tmp_path, monkeypatch, capsys):
    """Killed after epoch 2's rows reached W&B but before its checkpoint, the resumed run replays
    epoch 2; the sink's note of what it sent keeps W&B's history to one row per (epoch, split)."""
    import sys

    import runrecord.record as record_module
    from tests.test_runrecord import FakeWandb

    fake = FakeWandb()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setenv("WANDB_MODE", "offline")
    real = record_module.RunRecord.save_checkpoint

    def killed_at_epoch_2(self, name, state, keep_previous=False):
        if name == "last" and state["epoch"] == 2:
            raise KeyboardInterrupt
        return real(self, name, state, keep_previous)

    monkeypatch.setattr(record_module.RunRecord, "save_checkpoint", killed_at_epoch_2)
    args = tiny_args(tmp_path, "--log_online", epochs=3)
    assert main.main(args) == 130
    sent = [(r["epoch"], k.split("/")[0]) for r in fake.logged if isinstance(r, dict) for k in r]
    assert (2, "test") in sent  # epoch 2 reached W&B before the kill
    monkeypatch.setattr(record_module.RunRecord, "save_checkpoint", real)
    assert main.main(args) == 0
    rows_sent = [
        (r["epoch"], next(k.split("/")[0] for k in r if k != "epoch"))
        for r in fake.logged
        if isinstance(r, dict)
    ]
    assert len(rows_sent) == len(set(rows_sent)) and {e for e, _ in rows_sent} == {0, 1, 2, 3}
    assert len(fake.inits) == 2 and fake.logged[-1] == "finished"
    # a fresh run in a new folder sends everything
    other = tmp_path / "other"
    fake.logged.clear()
    assert main.main(tiny_args(other, "--log_online", epochs=1)) == 0
    assert {r["epoch"] for r in fake.logged if isinstance(r, dict)} == {0, 1}
