"""Tests for oecl_core.optim: LARS, parameter groups, optimiser factory and schedules."""

import copy
import io
import math

import pytest
import torch
from torch import nn

from oecl_core.optim import (
    LARS,
    SGD,
    alpha_at,
    build_optimizer,
    cosine_lr,
    param_groups_for,
    scaled_warmup,
    scheduled_lr,
    set_lr,
)


def _small_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))


def _loss(model: nn.Module, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 6, generator=g, dtype=torch.float64)
    y = torch.randn(8, 3, generator=g, dtype=torch.float64)
    return ((model(x) - y) ** 2).mean()


# --------------------------------------------------------------------------- LARS


def test_lars_two_steps_match_hand_computation():
    lr, mom, wd, tc, eps = 0.1, 0.9, 1e-2, 0.001, 1e-8
    w0 = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    g1 = torch.tensor([[0.1, 0.2], [-0.3, 0.05]], dtype=torch.float64)
    g2 = torch.tensor([[-0.4, 0.0], [0.2, 0.7]], dtype=torch.float64)

    p = nn.Parameter(w0.clone())
    opt = LARS([p], lr=lr, momentum=mom, weight_decay=wd, trust_coefficient=tc, eps=eps)
    for g in (g1, g2):
        p.grad = g.clone()
        opt.step()

    # independent hand computation with python floats
    def norm(t):
        return math.sqrt(sum(v * v for v in t.flatten().tolist()))

    w = w0.clone()
    buf = None
    for g in (g1, g2):
        trust = tc * norm(w) / (norm(g) + wd * norm(w) + eps)
        d = trust * (g + wd * w)
        buf = d if buf is None else mom * buf + d
        w = w - lr * buf

    torch.testing.assert_close(p.detach(), w, rtol=1e-12, atol=1e-14)
    # and the step really moved the weight (sanity: not a no-op)
    assert not torch.allclose(p.detach(), w0)


def test_lars_trust_ratio_is_one_for_zero_weight_or_zero_grad():
    lr = 0.5
    # zero weight: plain SGD step
    p = nn.Parameter(torch.zeros(3, 2, dtype=torch.float64))
    g = torch.arange(6, dtype=torch.float64).reshape(3, 2)
    opt = LARS([p], lr=lr, momentum=0.9, weight_decay=1e-6)
    p.grad = g.clone()
    opt.step()
    torch.testing.assert_close(p.detach(), -lr * g)

    # zero gradient: trust = 1, only weight decay acts
    w0 = torch.ones(3, 2, dtype=torch.float64)
    q = nn.Parameter(w0.clone())
    opt = LARS([q], lr=lr, momentum=0.9, weight_decay=0.1)
    q.grad = torch.zeros_like(w0)
    opt.step()
    torch.testing.assert_close(q.detach(), w0 - lr * 0.1 * w0)


def test_lars_differs_from_sgd_where_trust_ratio_matters():
    lr, wd, tc, eps = 0.1, 1e-6, 0.001, 1e-8
    model = _small_model().double()
    lars_model = copy.deepcopy(model)
    sgd_model = copy.deepcopy(model)

    lars = LARS(param_groups_for(lars_model, wd), lr=lr, momentum=0.9, weight_decay=wd,
                trust_coefficient=tc, eps=eps)
    sgd = torch.optim.SGD(sgd_model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)

    for m, opt in ((lars_model, lars), (sgd_model, sgd)):
        opt.zero_grad()
        _loss(m).backward()

    w = lars_model[0].weight.detach().clone()
    g = lars_model[0].weight.grad.detach().clone()
    b = lars_model[0].bias.detach().clone()
    gb = lars_model[0].bias.grad.detach().clone()
    bn_w = lars_model[1].weight.detach().clone()
    bn_g = lars_model[1].weight.grad.detach().clone()
    torch.testing.assert_close(g, sgd_model[0].weight.grad)  # same gradient

    sgd_w_before = sgd_model[0].weight.detach().clone()
    lars.step()
    sgd.step()

    dw = (lars_model[0].weight.detach() - w).norm().item()
    wn, gn = w.norm().item(), g.norm().item()
    expected = lr * tc * wn / (gn + wd * wn + eps) * (g + wd * w).norm().item()
    assert dw == pytest.approx(expected, rel=1e-9)

    dw_sgd = (sgd_model[0].weight.detach() - sgd_w_before).norm().item()
    assert dw_sgd == pytest.approx(lr * (g + wd * w).norm().item(), rel=1e-9)
    # clearly different: the trust ratio here is far from 1
    assert abs(math.log(dw / dw_sgd)) > math.log(5.0)

    # bias and BN weight are in the lars=False group: plain SGD, no weight decay
    torch.testing.assert_close(lars_model[0].bias.detach(), b - lr * gb)
    torch.testing.assert_close(lars_model[1].weight.detach(), bn_w - lr * bn_g)


def test_trust_ratio_is_really_applied_regression():
    """The public OECL code flags no group for LARS adaptation, so it is plain SGD and
    ||dw|| / (lr * ||g||) == 1.  Ours must scale the step by the trust ratio."""
    lr, tc = 0.1, 0.001
    torch.manual_seed(3)
    w0 = torch.randn(16, 8, dtype=torch.float64)
    g = torch.randn(16, 8, dtype=torch.float64) * 0.1
    ratio_w_g = (w0.norm() / g.norm()).item()
    assert abs(math.log(ratio_w_g * tc)) > math.log(10.0)  # ||w||/||g|| far from 1/tc

    model = nn.Linear(8, 16, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(w0)
    opt = build_optimizer(model, "lars", lr=lr, momentum=0.9, weight_decay=0.0)
    model.weight.grad = g.clone()
    opt.step()
    step_ratio = ((model.weight.detach() - w0).norm() / (lr * g.norm())).item()
    expected = tc * w0.norm().item() / (g.norm().item() + 1e-8)  # default eps = 1e-8
    assert step_ratio == pytest.approx(expected, rel=1e-9)
    assert abs(step_ratio - 1.0) > 0.5


def test_lars_lars_false_group_is_plain_sgd_with_momentum():
    lr, mom = 0.2, 0.9
    w0 = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    g1 = torch.tensor([0.5, -0.5, 0.1], dtype=torch.float64)
    g2 = torch.tensor([0.1, 0.3, -0.2], dtype=torch.float64)
    p = nn.Parameter(w0.clone())
    q = nn.Parameter(w0.clone())
    lars = LARS([{"params": [p], "lars": False, "weight_decay": 0.0}], lr=lr, momentum=mom)
    sgd = torch.optim.SGD([q], lr=lr, momentum=mom)
    for g in (g1, g2):
        p.grad, q.grad = g.clone(), g.clone()
        lars.step()
        sgd.step()
    torch.testing.assert_close(p.detach(), q.detach())


def test_lars_skips_params_without_grad_and_supports_closure():
    p = nn.Parameter(torch.ones(2, 2))
    opt = LARS([p], lr=0.1)
    opt.step()  # no grad: unchanged, no crash
    torch.testing.assert_close(p.detach(), torch.ones(2, 2))

    def closure():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(4.0)
    assert not torch.allclose(p.detach(), torch.ones(2, 2))


@pytest.mark.parametrize("kwargs", [dict(lr=-1.0), dict(lr=0.1, momentum=-0.1),
                                    dict(lr=0.1, weight_decay=-1.0),
                                    dict(lr=0.1, trust_coefficient=0.0)])
def test_lars_rejects_invalid_hyperparameters(kwargs):
    with pytest.raises(ValueError):
        LARS([nn.Parameter(torch.ones(2))], **kwargs)


def test_lars_state_dict_round_trip_continues_identically():
    wd = 1e-4
    ref = _small_model(seed=7).double()
    ref_opt = LARS(param_groups_for(ref, wd), lr=0.1, momentum=0.9, weight_decay=wd)

    run = copy.deepcopy(ref)
    run_opt = LARS(param_groups_for(run, wd), lr=0.1, momentum=0.9, weight_decay=wd)

    def train_step(model, opt, step):
        opt.zero_grad()
        _loss(model, seed=100 + step).backward()
        opt.step()

    for step in range(3):
        train_step(ref, ref_opt, step)

    for step in range(2):
        train_step(run, run_opt, step)
    buf = io.BytesIO()
    torch.save({"model": run.state_dict(), "opt": run_opt.state_dict()}, buf)
    buf.seek(0)
    ckpt = torch.load(buf)

    resumed = _small_model(seed=99).double()  # different init: must be overwritten
    resumed.load_state_dict(ckpt["model"])
    resumed_opt = LARS(param_groups_for(resumed, wd), lr=0.1, momentum=0.9, weight_decay=wd)
    resumed_opt.load_state_dict(ckpt["opt"])
    assert len(resumed_opt.state) > 0
    assert resumed_opt.param_groups[1]["lars"] is False
    train_step(resumed, resumed_opt, 2)

    for a, b in zip(ref.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)

    # without the momentum state the third step would differ
    fresh = copy.deepcopy(resumed)
    fresh.load_state_dict(ckpt["model"])
    fresh_opt = LARS(param_groups_for(fresh, wd), lr=0.1, momentum=0.9, weight_decay=wd)
    train_step(fresh, fresh_opt, 2)
    assert not torch.allclose(fresh[0].weight, ref[0].weight)


def _lars_loop_step(optimizer: LARS) -> None:
    """The per-parameter Python loop LARS.step ran before it went through torch._foreach_*: the reference the
    fused step must reproduce (it reads and writes the optimizer's own momentum buffers)."""
    with torch.no_grad():
        for group in optimizer.param_groups:
            lr, momentum, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                d = grad.add(p, alpha=wd) if wd != 0.0 else grad
                if group.get("lars", True):
                    w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(grad)
                    trust = group["trust_coefficient"] * w_norm / (g_norm + wd * w_norm + group["eps"])
                    d = d.mul(torch.where((w_norm > 0) & (g_norm > 0), trust, torch.ones_like(trust)))
                if momentum != 0.0:
                    buf = optimizer.state[p].get("momentum_buffer")
                    if buf is None:
                        buf = optimizer.state[p]["momentum_buffer"] = torch.clone(d).detach()
                    else:
                        buf.mul_(momentum).add_(d)
                    d = buf
                p.add_(d, alpha=-lr)


def _frozen_model(seed: int) -> nn.Module:
    """A small conv net with a frozen layer (excluded from the optimiser) and a parameter left without a
    gradient in some steps."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.BatchNorm2d(8),
                          nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))
    model[3].weight.requires_grad_(False)  # excluded: no group holds it
    return model


@pytest.mark.parametrize("variant", ["lars", "lars_csi"])
@pytest.mark.parametrize("momentum,weight_decay", [(0.9, 1e-4), (0.9, 0.0), (0.0, 1e-6)])
def test_fused_lars_matches_the_per_parameter_loop(variant, momentum, weight_decay):
    fused_model, loop_model = _frozen_model(3), _frozen_model(3)
    fused = build_optimizer(fused_model, variant, 0.5, momentum, weight_decay)
    loop = build_optimizer(loop_model, variant, 0.5, momentum, weight_decay)
    g = torch.Generator().manual_seed(0)
    for step in range(5):
        x, y = torch.randn(6, 3, 9, 9, generator=g), torch.randn(6, 5, generator=g)
        for model, opt, stepper in ((fused_model, fused, LARS.step), (loop_model, loop, _lars_loop_step)):
            set_lr(opt, 0.5 * (step + 1))
            opt.zero_grad()
            ((model(x) - y) ** 2).mean().backward()
            if step == 2:  # a parameter without a gradient in one step: both skip it
                model[8].bias.grad = None
            stepper(opt)
    assert fused_model[3].weight.grad is None
    for (name, a), b in zip(fused_model.named_parameters(), loop_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=lambda m, name=name: f"{name}: {m}")
    moved = sum((a - b).abs().sum().item() for a, b in zip(fused_model.parameters(), _frozen_model(3).parameters()))
    assert moved > 1e-3  # the steps did something
    for p_f, p_l in zip(fused_model.parameters(), loop_model.parameters()):
        if momentum and p_f.requires_grad:
            torch.testing.assert_close(fused.state[p_f]["momentum_buffer"], loop.state[p_l]["momentum_buffer"],
                                       rtol=1e-5, atol=1e-7)


def test_fused_lars_resumes_from_a_state_dict_written_by_the_loop():
    """Checkpoints keep one momentum buffer per parameter, as the loop wrote them: a fused LARS loaded from the
    loop's state continues as the loop does."""
    wd = 1e-4
    a, b = _small_model(5), _small_model(5)
    loop_opt = LARS(param_groups_for(a, wd), lr=0.1, weight_decay=wd)
    for step in range(2):
        loop_opt.zero_grad()
        ((a(torch.ones(4, 6) * step) - 1) ** 2).mean().backward()
        _lars_loop_step(loop_opt)
    b.load_state_dict(a.state_dict())
    fused_opt = LARS(param_groups_for(b, wd), lr=0.1, weight_decay=wd)
    fused_opt.load_state_dict(copy.deepcopy(loop_opt.state_dict()))
    for model, opt, stepper in ((a, loop_opt, _lars_loop_step), (b, fused_opt, LARS.step)):
        opt.zero_grad()
        ((model(torch.full((4, 6), 0.3)) - 1) ** 2).mean().backward()
        stepper(opt)
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- groups / factory


def test_param_groups_for_splits_weights_from_biases_and_norm_params():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 6 * 6, 5), nn.BatchNorm1d(5), nn.Linear(5, 2, bias=False))
    decayed, plain = param_groups_for(model, weight_decay=1e-6)

    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert decayed["lars"] is True and decayed["weight_decay"] == 1e-6
    assert plain["lars"] is False and plain["weight_decay"] == 0.0
    assert ids(decayed["params"]) == ids([model[0].weight, model[4].weight, model[6].weight])
    assert ids(plain["params"]) == ids([model[0].bias, model[1].weight, model[1].bias,
                                        model[4].bias, model[5].weight, model[5].bias])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))
    assert not ids(decayed["params"]) & ids(plain["params"])


def test_build_optimizer_lars_and_sgd():
    model = _small_model()
    lars = build_optimizer(model, "lars", lr=0.1, momentum=0.9, weight_decay=1e-6)
    assert isinstance(lars, LARS)
    assert [g["lars"] for g in lars.param_groups] == [True, False]
    assert [g["weight_decay"] for g in lars.param_groups] == [1e-6, 0.0]
    assert all(g["lr"] == 0.1 and g["momentum"] == 0.9 for g in lars.param_groups)

    sgd = build_optimizer(model, "sgd", lr=0.1, momentum=0.9, weight_decay=5e-4)
    assert type(sgd) is SGD and isinstance(sgd, torch.optim.SGD)
    assert len(sgd.param_groups) == 1
    g = sgd.param_groups[0]
    assert g["lr"] == 0.1 and g["momentum"] == 0.9 and g["weight_decay"] == 5e-4
    assert g["nesterov"] is False
    assert len(g["params"]) == len(list(model.parameters()))  # decay on every parameter


@pytest.mark.parametrize("nesterov, weight_decay", [(False, 5e-4), (True, 5e-4), (False, 0.0)])
def test_sgd_is_torchs_sgd_step_for_step_and_through_its_state_dict(nesterov, weight_decay):
    # oecl_core.optim.SGD leaves out torch's torch._dynamo wrappers and nothing else: the same parameters after
    # every step, and checkpoints that either one resumes
    def steps(model, opt, seeds):
        for seed in seeds:
            opt.zero_grad(set_to_none=True)
            _loss(model, seed).backward()
            opt.step()

    kwargs = dict(lr=0.1, momentum=0.9, weight_decay=weight_decay, nesterov=nesterov)
    theirs, ours = _small_model(3).double(), _small_model(3).double()
    their_opt, our_opt = torch.optim.SGD(theirs.parameters(), **kwargs), SGD(ours.parameters(), **kwargs)
    steps(theirs, their_opt, range(3))
    steps(ours, our_opt, range(3))
    assert all(torch.equal(a, b) for a, b in zip(theirs.parameters(), ours.parameters()))
    # each resumes from the other's state dict (copied, as a checkpoint is: a loaded one shares its tensors)
    swapped_theirs, swapped_ours = copy.deepcopy(theirs), copy.deepcopy(ours)
    resumed_ours = SGD(swapped_theirs.parameters(), **kwargs)
    resumed_ours.load_state_dict(copy.deepcopy(their_opt.state_dict()))
    resumed_theirs = torch.optim.SGD(swapped_ours.parameters(), **kwargs)
    resumed_theirs.load_state_dict(copy.deepcopy(our_opt.state_dict()))
    for model, opt in ((theirs, their_opt), (ours, our_opt), (swapped_theirs, resumed_ours),
                       (swapped_ours, resumed_theirs)):
        steps(model, opt, range(3, 5))
    for model in (ours, swapped_theirs, swapped_ours):
        assert all(torch.equal(a, b) for a, b in zip(theirs.parameters(), model.parameters()))
    assert str(our_opt.state_dict()) == str(their_opt.state_dict())


def test_build_optimizer_unknown_name_lists_choices():
    with pytest.raises(ValueError) as exc:
        build_optimizer(_small_model(), "rmsprop", lr=0.1, momentum=0.9, weight_decay=0.0)
    msg = str(exc.value)
    assert "rmsprop" in msg and "lars" in msg and "sgd" in msg and "adam" in msg


def test_adam_nesterov_and_multistep_of_the_baselines():
    model = _small_model()
    adam = build_optimizer(model, "adam", lr=1e-3, momentum=0.9, weight_decay=0.0)
    assert isinstance(adam, torch.optim.Adam) and adam.param_groups[0]["betas"] == (0.9, 0.999)
    nesterov = build_optimizer(model, "sgd_nesterov", lr=0.1, momentum=0.9, weight_decay=5e-4)
    assert nesterov.param_groups[0]["nesterov"] is True and nesterov.param_groups[0]["weight_decay"] == 5e-4
    # eoe's MultiStepLR(milestones=[100, 150], gamma=0.1), stepped once per epoch
    lrs = [scheduled_lr(1e-3, e, 200, milestones=(100, 150)) for e in (0, 99, 100, 149, 150, 199)]
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5])


# --------------------------------------------------------------------------- schedules


def test_cosine_lr_endpoints_and_monotone():
    base = 0.1
    assert cosine_lr(base, 0.0) == pytest.approx(base)
    assert cosine_lr(base, 0.5) == pytest.approx(base / 2)
    assert cosine_lr(base, 1.0) == pytest.approx(0.0, abs=1e-15)
    values = [cosine_lr(base, i / 100) for i in range(101)]
    assert all(a > b for a, b in zip(values, values[1:]))
    # clamped outside [0, 1]
    assert cosine_lr(base, -0.3) == pytest.approx(base)
    assert cosine_lr(base, 1.7) == pytest.approx(0.0, abs=1e-15)


def test_set_lr_sets_every_group():
    opt = build_optimizer(_small_model(), "lars", lr=0.1, momentum=0.9, weight_decay=1e-6)
    set_lr(opt, 0.0123)
    assert [g["lr"] for g in opt.param_groups] == [0.0123, 0.0123]


def test_alpha_at_is_hard_step():
    assert [alpha_at(e, 0.5, 3) for e in range(6)] == [0.0, 0.0, 0.0, 0.5, 0.5, 0.5]
    assert alpha_at(49, 1.0, 50) == 0.0
    assert alpha_at(50, 1.0, 50) == 1.0
    assert alpha_at(0, 1.0, 0) == 1.0  # no warm-up


def test_scaled_warmup():
    assert scaled_warmup(500) == 50
    assert scaled_warmup(1000) == 100
    assert scaled_warmup(20) == 2
    assert scaled_warmup(25) == 3  # half rounds up
    assert scaled_warmup(14) == 1
    assert scaled_warmup(5) == 1  # at least one pure-SimCLR epoch
    assert scaled_warmup(2) == 1  # ... but always < epochs
    assert scaled_warmup(1) == 0  # the only epoch must use OE
    assert scaled_warmup(0) == 0
    assert scaled_warmup(10, paper_warmup=50, paper_epochs=50) == 9  # capped at epochs - 1
    assert scaled_warmup(10, paper_warmup=0) == 0
    for epochs in range(1, 60):
        w = scaled_warmup(epochs)
        assert 0 <= w < epochs
        assert (w >= 1) == (epochs >= 2)
    with pytest.raises(ValueError):
        scaled_warmup(10, paper_epochs=0)
