"""Multi-task methods: how one step's task losses become a parameter update.

Sampling schemes (`trainables.sampling`) decide which tasks train in a step; a method decides how a
step that trains several tasks at once (`joint`) combines them. Each registry entry (`Method`, in
`base`) carries its contract: description, paper, parameters (`Param`: flat config key, default,
bounds, search range; method parameters are prefixed with the method's name, so they never
collide with a scheme's), whether it needs the per-task Jacobian of the shared parameters (about
one backward pass per task), whether its step is invariant to task order, and any extra it needs.

    combiner = METHODS["upgrad"].create(n_tasks, params, seed, device)
    optimizer = Adam([*model.parameters(), *combiner.parameters()])   # uw trains log-variances
    ...
    optimizer.zero_grad(set_to_none=True)
    weights = combiner.backward(losses, shared=backbone_params, heads=head_params)
    optimizer.step()
    ...
    combiner.end_epoch()                                       # after each epoch (dwa)
    checkpoint["method"] = combiner.state_dict()               # load_state_dict on resume

Registry `METHODS`, in the order a search space offers them: the loss weightings (`weightings`:
ew, uw, dwa, rlw) and TorchJD's gradient aggregators (`aggregators`: upgrad, mgda, pcgrad, cagrad,
imtl_g, aligned_mtl, dualproj, graddrop). The engine (`trainables.engine`) combines every step
that trains all of a trial's tasks with the trial's method; the `multi` search space suggests
one where the scheme shares steps; `describe_methods` is `--list-methods`; `step_cost` is a
combined step's cost relative to `ew`, for the study's ETA.
"""

from __future__ import annotations

from errors import UserError
from trainables.methods.aggregators import AGGREGATORS, JacobianCombiner
from trainables.methods.base import Combiner, Method
from trainables.methods.weightings import WEIGHTINGS
from trainables.sampling import Param, scheme_params

METHODS: dict[str, Method] = {m.name: m for m in (*WEIGHTINGS, *AGGREGATORS)}


def get_method(name: str) -> Method:
    """The registered method `name`; `UserError` naming the known ones otherwise."""
    if name not in METHODS:
        raise UserError(f"unknown method {name!r} (known: {', '.join(METHODS)})")
    return METHODS[name]


def method_params() -> dict[str, Param]:
    """Every parameter of every registered method, by name; none may share a scheme's name."""
    out: dict[str, Param] = {}
    schemes = scheme_params()
    for method in METHODS.values():
        for param in method.params:
            if param.name in schemes or out.setdefault(param.name, param) != param:
                raise ValueError(f"parameter {param.name!r} is declared twice")
    return out


def step_cost(method_name: str, n_tasks: int) -> float:
    """A combined step's time relative to `ew`'s: ~1 for a loss weighting (one backward of a
    weighted sum), ~`n_tasks` for a Jacobian method (about one backward pass per task; the
    README's benchmark table measures it, `python -m benchmarks.methods`)."""
    return float(max(n_tasks, 1)) if get_method(method_name).jacobian else 1.0


def describe_methods() -> str:
    """`--list-methods`: each method's name, description, paper, parameters (valid values and
    searched range), Jacobian cost and the extra it needs, if any."""
    lines = []
    for m in METHODS.values():
        cost = "Jacobian: ~1 backward per task" if m.jacobian else "one backward"
        extra = f'; needs pip install "mtl-study[{m.extra}]"' if m.extra else ""
        lines.append(f"{m.name:12s} {m.description} ({m.reference}; {cost}{extra})")
        for p in m.params:
            scale = ", log" if p.log else ""
            lines.append(
                f"{'':12s}   {p.name}: {p.rule()}, default {p.default:g}, searched in "
                f"[{p.search[0]:g}, {p.search[1]:g}{scale}]: {p.help}"
            )
    return "\n".join(lines)


__all__ = [
    "METHODS",
    "describe_methods",
    "step_cost",
    "Combiner",
    "JacobianCombiner",
    "Method",
    "get_method",
    "method_params",
]
