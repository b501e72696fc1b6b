"""Multi-task methods: each keeps the promise of its paper on constructed conflicting gradients,
`ew` is exactly the summed-loss backward, steps are invariant to task order where the registry
says so (and not where it says not), state round-trips through a checkpoint and a resumed run
repeats an uninterrupted one, and every registered method honours the contract."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F
import torchjd.scalarization as scal
from helpers import run_module
from torch import nn

from errors import UserError
from trainables.methods import METHODS, Method, get_method, method_params
from trainables.methods.base import Combiner, seeded_torch, step_seed
from trainables.sampling import scheme_params

JACOBIAN = sorted(n for n, m in METHODS.items() if m.jacobian)
INVARIANT = sorted(n for n, m in METHODS.items() if m.order_invariant)
NOT_INVARIANT = sorted(set(METHODS) - set(INVARIANT))
NON_CONFLICTING = ["upgrad", "mgda", "dualproj"]  # the update never opposes a task's gradient


class Tiny(nn.Module):
    """A shared Linear and one linear head per task."""

    def __init__(self, n_tasks: int, d_in: int = 3, d: int = 3, classes: int = 1) -> None:
        super().__init__()
        self.shared = nn.Linear(d_in, d, bias=False)
        self.heads = nn.ModuleList(nn.Linear(d, classes, bias=False) for _ in range(n_tasks))

    def forward(self, x: torch.Tensor, task: int) -> torch.Tensor:
        return self.heads[task](self.shared(x))

    def split(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        return list(self.shared.parameters()), list(self.heads.parameters())


# one input per task: gradient of task i w.r.t. the shared weight is ones(3) x_i^T, so the tasks'
# gradients meet at the inner products of the x_i; task 0's is large and opposes task 1's
CONFLICT_X = [[10.0, 0.0, 0.0], [-1.0, 1.0, 0.0], [0.0, -0.5, 1.0]]


def conflicting(n_tasks: int = 3) -> tuple[Tiny, list[torch.Tensor]]:
    model = Tiny(n_tasks)
    with torch.no_grad():
        model.shared.weight.copy_(torch.eye(3))
        for head in model.heads:
            head.weight.fill_(1.0)
    return model, [torch.tensor([x]) for x in CONFLICT_X[:n_tasks]]


def linear_losses(model: Tiny, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    return [model(x, i).mean() for i, x in enumerate(xs)]


def ce_batches(n_tasks: int, seed: int, n: int = 16) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, 5, generator=g), torch.randint(0, 4, (n,), generator=g))
        for _ in range(n_tasks)
    ]


def ce_model(n_tasks: int, seed: int = 0) -> Tiny:
    torch.manual_seed(seed)
    return Tiny(n_tasks, d_in=5, d=6, classes=4)


def ce_losses(model: Tiny, batches) -> list[torch.Tensor]:
    return [F.cross_entropy(model(x, i), y) for i, (x, y) in enumerate(batches)]


def flat_grad(params) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in params])


def task_gradients(model: Tiny, losses: list[torch.Tensor]) -> torch.Tensor:
    """The Jacobian of the losses w.r.t. the shared parameters, row by row, by plain autograd."""
    shared, _ = model.split()
    rows = [torch.autograd.grad(loss, shared, retain_graph=True) for loss in losses]
    return torch.stack([torch.cat([g.reshape(-1) for g in row]) for row in rows])


def step(method: str, model: Tiny, losses, seed: int = 0, combiner: Combiner | None = None):
    combiner = combiner or METHODS[method].create(len(losses), seed=seed)
    model.zero_grad(set_to_none=True)
    shared, heads = model.split()
    weights = combiner.backward(losses, shared, heads)
    return flat_grad(shared), weights


def round_trip(state: dict) -> dict:
    """Through a checkpoint file's format: torch.save, then torch.load(weights_only=True)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


# --- the contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_honours_its_contract(name):
    method = METHODS[name]
    assert method.name == name and method.description and method.reference
    assert not method.missing(), f"{name} needs {method.missing()} (installed by [test])"
    for param in method.params:
        assert param.name.startswith(f"{name}_")  # its own namespace in the trial config
        assert param.admits(param.default)
        assert all(param.admits(v) for v in param.search) and param.search[0] < param.search[1]
    model = ce_model(3)
    losses = ce_losses(model, ce_batches(3, seed=1))
    combiner = method.create(3, seed=0)
    update, weights = step(name, model, losses, combiner=combiner)
    assert torch.isfinite(update).all() and update.abs().sum() > 0
    assert all(h.grad is not None and torch.isfinite(h.grad).all() for h in model.split()[1])
    if method.weights:
        assert weights.shape == (3,) and torch.isfinite(weights).all() and not weights.requires_grad
    else:
        assert weights is None
    state = round_trip(combiner.state_dict())
    assert state["step"] == 1
    fresh = method.create(3, seed=0)
    fresh.load_state_dict(state)
    assert round_trip(fresh.state_dict()).keys() == state.keys()


def test_parameters_are_declared_once_and_apart_from_the_schemes():
    params = method_params()
    assert set(params) == {p.name for m in METHODS.values() for p in m.params}
    assert not set(params) & set(scheme_params())
    assert set(METHODS) >= {"ew", "uw", "dwa", "rlw", "upgrad", "mgda", "pcgrad", "cagrad"}
    assert {"imtl_g", "aligned_mtl", "dualproj", "graddrop"} <= set(METHODS)


def test_bad_input_is_a_user_error():
    with pytest.raises(UserError, match="unknown method 'nash'"):
        get_method("nash")
    with pytest.raises(UserError, match="cagrad_c must be >= 0"):
        METHODS["cagrad"].create(2, {"cagrad_c": -1.0})
    with pytest.raises(UserError, match="dwa_temperature must be > 0"):
        METHODS["dwa"].create(2, {"dwa_temperature": 0.0})
    with pytest.raises(UserError, match="no parameter 'cagrad_c'"):
        METHODS["upgrad"].create(2, {"cagrad_c": 0.5})
    with pytest.raises(UserError, match="combines several tasks"):
        METHODS["ew"].create(1)
    absent = Method(
        "x", "d", "r", build=METHODS["ew"].build, requires=("no_such_mod_42",), extra="x"
    )
    with pytest.raises(UserError, match=r'needs no_such_mod_42: pip install "mtl-study\[x\]"'):
        absent.create(2)
    with pytest.raises(ValueError, match="expected 3 losses"):
        METHODS["upgrad"].create(3).backward([torch.ones(())] * 2, [], [])


# --- equal weights is the plain sum, bit for bit ---------------------------------------------


def test_ew_is_the_plain_summed_loss_backward_bit_for_bit():
    batches = ce_batches(3, seed=2)
    grads = []
    for form in ["ew", "plain", "joint"]:
        model = ce_model(3, seed=5)
        losses = ce_losses(model, batches)
        if form == "ew":
            step("ew", model, losses)
        elif form == "plain":
            (losses[0] + losses[1] + losses[2]).backward()
        else:  # trainables.engine's joint step with its default weights 1
            total = 0.0
            for loss in losses:
                total = total + 1.0 * loss
            total.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for other in grads[1:]:
        assert all(torch.equal(a, b) for a, b in zip(grads[0], other))


# --- gradient aggregation --------------------------------------------------------------------


def test_the_constructed_gradients_conflict():
    """The premise of the next tests: the summed update opposes task 1's gradient."""
    model, xs = conflicting()
    jac = task_gradients(model, linear_losses(model, xs))
    update, _ = step("ew", model, linear_losses(model, xs))
    assert torch.allclose(update, jac.sum(0))
    assert jac[0] @ jac[1] < 0 and update @ jac[1] < 0


@pytest.mark.parametrize("name", NON_CONFLICTING)
def test_the_update_never_opposes_a_task(name):
    """J u >= 0. MGDA up to its solver's tolerance; UPGrad and DualProj solve their projection
    with TorchJD's documented regularization of the trace-normalized Gramian (G/tr G + eps I),
    which bounds the violation by eps tr(G) w_i: checked at that bound, and a fraction of it."""
    model, xs = conflicting()
    jac = task_gradients(model, linear_losses(model, xs))
    combiner = METHODS[name].create(3)
    update, weights = step(name, model, linear_losses(model, xs), combiner=combiner)
    dots = jac @ update
    assert update.norm() > 1e-3  # a real step, not the trivial zero
    if name == "mgda":
        slack = 1e-5 * jac.norm(dim=1) * update.norm()
    else:
        eps = combiner.aggregator.projector.reg_eps
        slack = eps * jac.pow(2).sum() * weights * 1.001 + 1e-6
        assert (weights >= 0).all() and slack.max() < 0.02 * dots.abs().max()
    assert (dots >= -slack).all(), (dots, slack)


def test_pcgrad_never_opposes_either_of_two_tasks():
    model, xs = conflicting(2)
    jac = task_gradients(model, linear_losses(model, xs))
    assert jac[0] @ jac[1] < 0
    update, _ = step("pcgrad", model, linear_losses(model, xs))
    assert (jac @ update >= -1e-5).all() and update.norm() > 1e-3


@pytest.mark.parametrize("name", JACOBIAN)
def test_aggregates_the_shared_jacobian_and_heads_take_their_own_gradient(name):
    """The shared update is TorchJD's aggregator applied to the Jacobian built by plain autograd;
    each head's gradient is its own task's."""
    model = ce_model(3)
    batches = ce_batches(3, seed=3)
    jac = task_gradients(model, ce_losses(model, batches))
    _, heads = model.split()
    own = [torch.autograd.grad(loss, h)[0] for loss, h in zip(ce_losses(model, batches), heads)]
    combiner = METHODS[name].create(3, seed=7)
    update, weights = step(name, model, ce_losses(model, batches), combiner=combiner)
    with seeded_torch(step_seed(7, 0), torch.device("cpu")):
        expected = combiner.aggregator(jac)
    assert torch.allclose(update, expected, rtol=1e-5, atol=1e-7)
    if weights is not None:
        assert torch.allclose(weights @ jac, update, rtol=1e-4, atol=1e-6)
    assert all(torch.equal(h.grad, g) for h, g in zip(heads, own))


@pytest.mark.parametrize("name", ["pcgrad", "graddrop"])
def test_random_aggregators_repeat_from_their_state_and_leave_global_rng_alone(name):
    model = ce_model(3)
    batches = [ce_batches(3, seed=s) for s in range(4)]
    before = torch.get_rng_state()
    run = METHODS[name].create(3, seed=11)
    updates = [step(name, model, ce_losses(model, b), combiner=run)[0] for b in batches]
    assert torch.equal(torch.get_rng_state(), before)
    resumed = METHODS[name].create(3, seed=11)
    resumed.load_state_dict(round_trip({"step": 2}))
    again = [step(name, model, ce_losses(model, b), combiner=resumed)[0] for b in batches[2:]]
    assert all(torch.equal(a, b) for a, b in zip(updates[2:], again))


# --- task order ------------------------------------------------------------------------------


def trajectory(name: str, order: list[int], steps: int = 6) -> tuple[torch.Tensor, list]:
    """`steps` SGD steps (epochs of 2) on the conflicting model, tasks listed in `order`: the
    final shared weight and each step's weights, put back in the original task order."""
    model, xs = conflicting(len(order))
    model.heads = nn.ModuleList(model.heads[i] for i in order)
    xs = [xs[i] for i in order]
    combiner = METHODS[name].create(len(order), seed=3)
    opt = torch.optim.SGD([*model.parameters(), *combiner.parameters()], lr=0.01)
    inverse = [order.index(i) for i in range(len(order))]
    weights = []
    for s in range(steps):
        scale = 1.0 + 0.3 * s * torch.arange(1.0, len(order) + 1)[order]  # losses that move
        losses = [sc * (loss + 2.0) for sc, loss in zip(scale, linear_losses(model, xs))]
        w = step(name, model, losses, combiner=combiner)[1]
        opt.step()
        weights.append(None if w is None else w[inverse])
        if s % 2 == 1:
            combiner.end_epoch()
    return model.shared.weight.detach().clone(), weights


@pytest.mark.parametrize("name", INVARIANT)
def test_invariant_to_task_order(name):
    w_ref, weights_ref = trajectory(name, [0, 1, 2])
    w_perm, weights_perm = trajectory(name, [2, 0, 1])
    assert torch.allclose(w_ref, w_perm, rtol=1e-4, atol=1e-5), (w_ref - w_perm).abs().max()
    for a, b in zip(weights_ref, weights_perm):
        assert a is None and b is None or torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", NOT_INVARIANT)
def test_not_invariant_to_task_order_where_the_registry_says_so(name):
    """rlw's draw and pcgrad's projection order (K > 2) are tied to task positions: the same
    seed gives another step when the tasks are listed in another order."""
    assert set(NOT_INVARIANT) == {"rlw", "pcgrad"}
    w_ref, _ = trajectory(name, [0, 1, 2])
    w_perm, _ = trajectory(name, [2, 0, 1])
    assert not torch.allclose(w_ref, w_perm, rtol=1e-4, atol=1e-5)


def test_pcgrad_is_invariant_to_the_order_of_two_tasks():
    w_ref, _ = trajectory("pcgrad", [0, 1])
    w_perm, _ = trajectory("pcgrad", [1, 0])
    assert torch.allclose(w_ref, w_perm, rtol=1e-5, atol=1e-6)


# --- loss weightings: their formulas, state and resume ---------------------------------------


def leaf_losses(values) -> list[torch.Tensor]:
    """Losses as leaves: after `backward`, each one's `.grad` is the weight it was given."""
    return [torch.tensor(float(v), requires_grad=True) for v in values]


def test_uw_log_variances_move_are_in_the_state_and_match_torchjd():
    uw = METHODS["uw"].create(2)
    (s,) = uw.parameters()
    opt = torch.optim.SGD(uw.parameters(), lr=0.1)
    losses = leaf_losses([2.0, 0.5])
    weights = uw.backward(losses, [], [])
    assert torch.equal(weights, torch.full((2,), 0.5))
    reference = scal.UW(2)  # TorchJD's independent implementation of the same objective
    ref_losses = leaf_losses([2.0, 0.5])
    reference(torch.stack(ref_losses)).backward()
    assert torch.allclose(s.grad, reference.log_var.grad)
    assert all(torch.allclose(a.grad, b.grad) for a, b in zip(losses, ref_losses))
    opt.step()
    assert (s.detach() != 0).all() and s[0] > s[1]  # the larger loss gets the larger variance
    fresh = METHODS["uw"].create(2)
    (p,) = fresh.parameters()
    fresh.load_state_dict(round_trip(uw.state_dict()))
    assert fresh.parameters()[0] is p and torch.equal(p, s)  # loaded in place: same Parameter
    assert torch.equal(fresh.backward(leaf_losses([1.0, 1.0]), [], []), 0.5 * torch.exp(-s))


EPOCH_LOSSES = [[2.0, 1.0, 4.0], [1.5, 0.9, 2.0], [1.0, 0.85, 1.2], [0.8, 0.8, 0.9]]


def step_values(losses: list[float], k: int) -> list[float]:
    """Step k's losses in an epoch around `losses`."""
    return [v * (1 + 0.1 * k) for v in losses]


def run_weighting(combiner: Combiner, epochs, per_epoch: int = 3) -> list:
    """Each epoch: `per_epoch` steps around that epoch's losses; the weights each step gave."""
    out = []
    for losses in epochs:
        for k in range(per_epoch):
            step_losses = leaf_losses(step_values(losses, k))
            combiner.backward(step_losses, [], [])
            out.append(torch.stack([x.grad for x in step_losses]))
        combiner.end_epoch()
    return out


def test_dwa_matches_torchjd_and_the_paper():
    ours = run_weighting(METHODS["dwa"].create(3, {"dwa_temperature": 2.0}), EPOCH_LOSSES)
    reference = scal.DWA(temperature=2.0)
    theirs = []
    for losses in EPOCH_LOSSES:
        for k in range(3):
            values = torch.tensor(step_values(losses, k), requires_grad=True)
            reference(values).backward()
            theirs.append(values.grad)
        reference.step()
    assert all(torch.equal(w, torch.ones(3)) for w in ours[:6])  # the first two epochs: 1
    assert all(torch.allclose(a, b, rtol=1e-6) for a, b in zip(ours, theirs))
    # the paper's formula, epoch 4: K softmax(r / T), r = epoch 3's mean loss / epoch 2's
    rate = torch.tensor(EPOCH_LOSSES[2]) / torch.tensor(EPOCH_LOSSES[1])
    assert torch.allclose(ours[-1], 3 * torch.softmax(rate / 2.0, 0), rtol=1e-5)
    assert ours[-1].argmax() == 1  # task 1's loss fell least (0.9 -> 0.85): it gains weight


@pytest.mark.parametrize("name", ["dwa", "rlw"])
def test_resume_reproduces_the_same_weights(name):
    uninterrupted = run_weighting(METHODS[name].create(3, seed=4), EPOCH_LOSSES)
    first = METHODS[name].create(3, seed=4)
    head = run_weighting(first, EPOCH_LOSSES[:2])
    first.backward(leaf_losses(step_values(EPOCH_LOSSES[2], 0)), [], [])  # into epoch 3: restart
    resumed = METHODS[name].create(3, seed=4)
    resumed.load_state_dict(round_trip(first.state_dict()))
    tail = [resumed.backward(leaf_losses(step_values(EPOCH_LOSSES[2], k)), [], []) for k in (1, 2)]
    resumed.end_epoch()
    tail += run_weighting(resumed, EPOCH_LOSSES[3:])
    assert all(torch.equal(a, b) for a, b in zip(uninterrupted[:6], head))
    # the resumed run's step 1 and 2 of epoch 3 and all of epoch 4 equal the uninterrupted one's
    rest = uninterrupted[7:]
    assert len(tail) == len(rest) and all(torch.equal(a, b) for a, b in zip(rest, tail))


def test_rlw_weights_are_random_positive_and_sum_to_one():
    weights = run_weighting(METHODS["rlw"].create(3, seed=0), EPOCH_LOSSES)
    stacked = torch.stack(weights)
    assert (stacked > 0).all() and torch.allclose(stacked.sum(1), torch.ones(len(weights)))
    assert stacked.std(0).min() > 0.05  # a new draw every step
    other = torch.stack(run_weighting(METHODS["rlw"].create(3, seed=1), EPOCH_LOSSES))
    assert not torch.allclose(stacked, other)
    assert math.isclose(float(stacked.mean()), 1 / 3, abs_tol=0.1)


# --- the benchmark -----------------------------------------------------------------------------


@pytest.mark.slow
def test_methods_benchmark_prints_ratios_against_ew():
    done = run_module(
        "benchmarks.methods",
        *("--batch-size", "4", "--steps", "1", "--rounds", "1", "--threads", "1"),
        *("--methods", "upgrad"),
        timeout=600,  # minutes only on a loaded 2-core machine (two fresh processes import torch)
    )
    assert done.returncode == 0, done.stderr[-3000:]
    *rows, summary = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["method"] for r in rows] == ["ew", "upgrad"] and summary["phase"] == "summary"
    assert summary["time_ratio"]["ew"] == 1.0 and summary["memory_ratio"]["ew"] == 1.0
    assert all(r["step_s"] > 0 and r["peak_step_bytes"] > 0 for r in rows)
    assert rows[1]["time_ratio"] == pytest.approx(rows[1]["step_s"] / rows[0]["step_s"], rel=1e-3)
