"""Speed settings: autocast dtype choice, loss scaling, channels-last, torch.compile."""

from __future__ import annotations

import pytest
import torch

from batch_mining import MINERS
from criteria import LOSSES
from training import acceleration, train_one_epoch

CPU = torch.device("cpu")


def test_amp_dtype_prefers_bf16_and_scales_only_fp16(monkeypatch):
    assert acceleration.amp_dtype(CPU) == torch.bfloat16
    assert acceleration.grad_scaler(torch.bfloat16, CPU) is None
    with pytest.raises(acceleration.AccelerationError, match="fp16 needs a CUDA GPU"):
        acceleration.amp_dtype(CPU, "fp16")
    with pytest.raises(acceleration.AccelerationError, match="choose one of: auto, bf16, fp16"):
        acceleration.amp_dtype(CPU, "int8")
    gpu = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert acceleration.amp_dtype(gpu) == torch.float16  # e.g. a V100
    with pytest.raises(acceleration.AccelerationError, match="use --amp_dtype fp16"):
        acceleration.amp_dtype(gpu, "bf16")
    assert isinstance(acceleration.grad_scaler(torch.float16, gpu), torch.amp.GradScaler)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert acceleration.amp_dtype(gpu) == torch.bfloat16  # A100, H100, H200
    assert (
        acceleration.describe(torch.bfloat16, True, True, gpu)
        == "bf16 autocast, channels_last, compiled"
    )


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 16),
    )


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(12, 3, 10, 10, generator=g), torch.arange(4).repeat_interleave(3)


def _loss_and_grads(net, x, labels, dtype=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    loss_fn = LOSSES.build(
        "margin", None, miner=MINERS.build("distance", None, seed=0), n_classes=4
    )
    with acceleration.autocast(CPU, dtype):
        embeds = torch.nn.functional.normalize(net(x), dim=1)
    loss = loss_fn(embeds.float(), labels)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in net.parameters()]


def test_channels_last_changes_layout_not_result():
    x, _ = _batch()
    ref = _net()
    out_ref = ref(x)
    net = acceleration.use_channels_last(_net(), torch.device("cuda"))  # nothing runs on CUDA
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last)
    seen = []
    net[0].register_forward_pre_hook(
        lambda m, a: seen.append(a[0].is_contiguous(memory_format=torch.channels_last))
    )
    torch.testing.assert_close(net(x), out_ref, rtol=1e-5, atol=1e-5)
    assert seen == [True]
    assert not acceleration.use_channels_last(_net(), CPU)[0].weight.is_contiguous(
        memory_format=torch.channels_last
    )


def test_bf16_autocast_step_matches_fp32_within_bf16_precision():
    x, labels = _batch()
    loss32, grads32 = _loss_and_grads(_net(), x, labels)
    loss16, grads16 = _loss_and_grads(_net(), x, labels, torch.bfloat16)
    torch.testing.assert_close(loss16, loss32, rtol=3e-2, atol=3e-3)
    cos = torch.nn.functional.cosine_similarity(
        torch.cat([g.flatten() for g in grads16]), torch.cat([g.flatten() for g in grads32]), dim=0
    )
    assert cos > 0.99


def test_training_loop_takes_an_autocast_dtype():
    x, labels = _batch()
    loader = [(x, labels, torch.arange(len(x)))]
    net = _net()
    loss_fn = LOSSES.build("proxyanchor", None, n_classes=4, embed_dim=16)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    logs = train_one_epoch(
        net, loader, loss_fn, opt, CPU, epoch=1, amp=torch.bfloat16, show_progress=False
    )
    assert logs["iterations"] == 1 and torch.isfinite(torch.tensor(logs["loss"]))


def test_compile_gives_the_same_loss_and_gradients():
    x, labels = _batch()
    loss_eager, grads_eager = _loss_and_grads(_net(), x, labels)
    net = _net()
    try:
        acceleration.check_compile(True)
    except acceleration.AccelerationError as err:  # then the flag's error
        assert "\n" not in str(err) and "--compile" in str(err)
        return
    loss_c, _ = _loss_and_grads(acceleration.compile_model(net, True), x, labels)
    torch.testing.assert_close(loss_c, loss_eager, rtol=1e-4, atol=1e-5)
    for g, ref in zip([p.grad for p in net.parameters()], grads_eager):
        torch.testing.assert_close(g, ref, rtol=1e-3, atol=1e-5)


def test_compile_without_a_compiler_fails_with_one_line(monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(acceleration.AccelerationError) as err:
        acceleration.check_compile(True)
    assert "\n" not in str(err.value) and "drop --compile" in str(err.value)
    acceleration.check_compile(False)  # off: nothing to check
