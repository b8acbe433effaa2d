"""GPU/CPU execution helpers: out-of-memory back-off (with an injected OOM), batch search."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transferlab.training.accel import (
    configure_cpu_threads,
    find_batch_size,
    forward_backward,
)
from transferlab.training.loop import Trainer


class OOMAbove(nn.Module):
    """Wraps a model; raises CUDA's out-of-memory error for batches larger than ``limit``."""

    def __init__(self, inner: nn.Module, limit: int) -> None:
        super().__init__()
        self.inner, self.limit, self.calls, self.ooms = inner, limit, 0, 0

    def forward(self, x):
        self.calls += 1
        if x.shape[0] > self.limit:
            self.ooms += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (injected)")
        return self.inner(x)


def _data(n=64, d=10, classes=3):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = torch.randint(classes, (n,), generator=g)
    return list(zip(x.split(16), y.split(16), strict=True))


def _train(limit: int | None):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    model = OOMAbove(net, limit) if limit else net
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    data = _data()
    trainer = Trainer(model, opt, None, train_loader=data, val_loader=data[:1], epochs=2)
    trainer.fit()
    return net, trainer, model


def test_oom_halves_the_micro_batch_and_loses_no_state():
    reference, ref_trainer, _ = _train(None)
    with pytest.warns(RuntimeWarning, match="out of device memory at 16 images"):
        net, trainer, wrapper = _train(limit=4)
    assert trainer.micro_batch == 4  # 16 -> 8 -> 4, then kept for the rest of the fit
    assert trainer.eval_micro_batch == 4  # validation backs off the same way
    assert wrapper.ooms == 4
    assert trainer.step == ref_trainer.step == 8  # every step applied exactly once
    for a, b in zip(net.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for r1, r2 in zip(trainer.history, ref_trainer.history, strict=True):
        assert r1.train_loss == pytest.approx(r2.train_loss, rel=1e-5)
        assert r1.train_acc == r2.train_acc
        assert r1.val_loss == pytest.approx(r2.val_loss, rel=1e-5)


def test_oom_at_a_single_image_is_raised():
    net = OOMAbove(nn.Linear(10, 3), limit=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    trainer = Trainer(net, opt, None, train_loader=[], val_loader=[], epochs=1)
    x, y = _data()[0]
    with pytest.warns(RuntimeWarning), pytest.raises(torch.cuda.OutOfMemoryError):
        forward_backward(trainer, net, x, y)


def test_micro_batches_add_up_to_the_full_batch_gradient():
    torch.manual_seed(0)
    net = nn.Linear(10, 3)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    trainer = Trainer(net, opt, None, train_loader=[], val_loader=[], epochs=1)
    x, y = _data()[0]
    full_loss, _ = forward_backward(trainer, net, x, y)
    full = net.weight.grad.clone()
    trainer.micro_batch = 3  # uneven chunks: 3+3+3+3+3+1
    loss, logits = forward_backward(trainer, net, x, y)
    torch.testing.assert_close(net.weight.grad, full)
    torch.testing.assert_close(loss, full_loss)
    assert logits.shape == (16, 3)


def test_find_batch_size_doubles_then_backs_off():
    tried = []

    def step(n):
        tried.append(n)
        if n > 100:
            raise torch.cuda.OutOfMemoryError("injected")

    assert find_batch_size(step, start=32, limit=1024) == 64
    assert tried == [32, 64, 128]
    tried.clear()
    assert find_batch_size(step, start=512, limit=1024) == 64
    assert tried == [512, 256, 128, 64]
    assert find_batch_size(lambda n: None, start=8, limit=48) == 48
    with pytest.raises(torch.cuda.OutOfMemoryError):
        find_batch_size(lambda n: step(10**6), start=4, limit=8)


def test_cpu_threads_never_exceed_the_cpus_granted(monkeypatch):
    import os

    before = torch.get_num_threads()
    monkeypatch.delenv("TRANSFERLAB_THREADS", raising=False)
    try:
        torch.set_num_threads(len(os.sched_getaffinity(0)) + 3)  # as in a container
        assert configure_cpu_threads() == len(os.sched_getaffinity(0))
        torch.set_num_threads(1)  # a lower count chosen by the user stays
        assert configure_cpu_threads() == 1
        assert configure_cpu_threads(2) == 2
        monkeypatch.setenv("TRANSFERLAB_THREADS", "1")
        assert configure_cpu_threads() == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.slow
def test_compiled_module_shares_parameters_and_matches():
    from transferlab.training.accel import maybe_compile

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    assert maybe_compile(net, False) is net
    compiled = maybe_compile(net, True)
    x = torch.randn(4, 10)
    torch.testing.assert_close(compiled(x), net(x))
    assert {id(p) for p in compiled.parameters()} == {id(p) for p in net.parameters()}


def test_cpu_threads_context_restores():
    from transferlab.training.accel import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
