"""Gradient aggregators from TorchJD: the update of the shared parameters combines the rows of the
Jacobian of the per-task loss vector with respect to them.

Each task has its own batch here, so the tasks share parameters, not features; the Jacobian is
taken with respect to the shared (backbone) parameters themselves (`torchjd.autojac.backward`
with `inputs=shared`: one vmapped backward over the K losses), and the aggregator turns it into
their `.grad` (`torchjd.autojac.jac_to_grad`, which also returns the weights where the aggregator
has them: update = weights @ J). Each head is used by one task only, so it takes the ordinary
gradient of its own loss. The algebra is TorchJD's; this module only chooses and wires.

  upgrad       UPGrad (Quinton & Rey 2024): each task's gradient projected onto the dual cone
  mgda         MGDA (Sener & Koltun 2018): the min-norm point of the gradients' convex hull
  pcgrad       PCGrad (Yu et al. 2020): conflicting components projected away, random order
  cagrad       CAGrad (Liu et al. 2021): the best worst-case improvement near the mean gradient
  imtl_g       IMTL-G (Liu et al. 2021): the update has equal projections on every task gradient
  aligned_mtl  Aligned-MTL (Senushkin et al. 2023): the gradients' principal components aligned
  dualproj     DualProj (Quinton & Rey 2024): the mean gradient projected onto the dual cone
  graddrop     GradDrop (Chen et al. 2020): sign-consistency masks drawn per coordinate

Left out: NashMTL, which needs cvxpy + ECOS solving a problem every few steps, and keeps an
internal step counter and previous weights that TorchJD does not expose for a checkpoint.

Randomness (pcgrad's order, graddrop's masks) comes from torch's global generators, which TorchJD
draws from; it is seeded per step from `(seed, step)` inside a fork, so a resumed trial repeats
an uninterrupted one and nobody else's stream moves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor
from torchjd import aggregation as agg
from torchjd.autojac import backward as jac_backward
from torchjd.autojac import jac_to_grad

from trainables.methods.base import Combiner, Method, seeded_torch, step_seed
from trainables.sampling import Param

MakeAggregator = Callable[[int, Mapping[str, float]], agg.Aggregator]


class JacobianCombiner(Combiner):
    """Aggregates the shared parameters' Jacobian with a TorchJD aggregator.

    `parallel_chunk_size` is handed to `torchjd.autojac.backward`: None differentiates the K
    losses in one vmapped pass; 1 one at a time (needed where vmap cannot run, e.g. through a
    torch.compile'd backbone).
    """

    def __init__(
        self,
        n_tasks: int,
        params: Mapping[str, float],
        seed: int,
        aggregator: agg.Aggregator,
        random: bool,
    ) -> None:
        super().__init__(n_tasks, params, seed)
        self.aggregator = aggregator
        self.random = random
        self.parallel_chunk_size: int | None = None

    def backward(
        self, losses: Sequence[Tensor], shared: Sequence[Tensor], heads: Sequence[Tensor]
    ) -> Tensor | None:
        self._check(losses)
        shared = [p for p in shared if p.requires_grad]
        if heads:  # each head is in one task's graph only: d(sum)/d(head) is its own gradient
            total = torch.stack(losses).sum()
            torch.autograd.backward(total, inputs=list(heads), retain_graph=True)
        jac_backward(list(losses), inputs=shared, parallel_chunk_size=self.parallel_chunk_size)
        if self.random:
            with seeded_torch(step_seed(self.seed, self.step), losses[0].device):
                weights = jac_to_grad(shared, self.aggregator)
        else:
            weights = jac_to_grad(shared, self.aggregator)
        self.step += 1
        return None if weights is None else weights.detach()


def _jacobian_method(
    name: str,
    description: str,
    reference: str,
    make: MakeAggregator,
    *,
    params: tuple[Param, ...] = (),
    random: bool = False,
    order_invariant: bool = True,
    weights: bool = True,
    requires: tuple[str, ...] = (),
    extra: str | None = None,
) -> Method:
    def build(n: int, p: dict[str, float], seed: int, device: torch.device) -> Combiner:
        return JacobianCombiner(n, p, seed, make(n, p), random)

    return Method(
        name,
        description,
        reference,
        build=build,
        params=params,
        jacobian=True,
        order_invariant=order_invariant,
        weights=weights,
        requires=requires,
        extra=extra,
    )


QP = ("qpsolvers", "quadprog")  # UPGrad's and DualProj's projector (torchjd[quadprog-projector])

AGGREGATORS: tuple[Method, ...] = (
    _jacobian_method(
        "upgrad",
        "UPGrad: every task's gradient projected onto the dual cone of all of them, averaged",
        "Quinton & Rey 2024",
        lambda n, p: agg.UPGrad(),
        requires=QP,
    ),
    _jacobian_method(
        "mgda",
        "MGDA: the minimum-norm convex combination of the task gradients",
        "Sener & Koltun 2018",
        lambda n, p: agg.MGDA(),
    ),
    _jacobian_method(
        "pcgrad",
        "PCGrad: each gradient's conflicting components projected away, in random order",
        "Yu et al. 2020",
        lambda n, p: agg.PCGrad(),
        random=True,
        order_invariant=False,  # the random projection order is tied to positions (K > 2)
    ),
    _jacobian_method(
        "cagrad",
        "CAGrad: maximizes the worst task's improvement within a ball around the mean gradient",
        "Liu et al. 2021",
        lambda n, p: agg.CAGrad(c=p["cagrad_c"]),
        params=(
            Param(
                "cagrad_c",
                default=0.5,
                bounds=(0.0, math.inf),
                search=(0.1, 0.9),
                help="c: radius of CAGrad's ball around the mean gradient (0: the mean)",
            ),
        ),
        requires=("cvxpy", "clarabel"),
        extra="cagrad",
    ),
    _jacobian_method(
        "imtl_g",
        "IMTL-G: the update's projections on every task gradient's direction are equal",
        "Liu et al. 2021",
        lambda n, p: agg.IMTLG(),
    ),
    _jacobian_method(
        "aligned_mtl",
        "Aligned-MTL: the gradient matrix's principal components aligned, then averaged",
        "Senushkin et al. 2023",
        lambda n, p: agg.AlignedMTL(),
    ),
    _jacobian_method(
        "dualproj",
        "DualProj: the mean gradient projected onto the dual cone of the task gradients",
        "Quinton & Rey 2024",
        lambda n, p: agg.DualProj(),
        requires=QP,
    ),
    _jacobian_method(
        "graddrop",
        "GradDrop: per coordinate, keeps the positive or negative gradients by a sign-purity draw",
        "Chen et al. 2020",
        lambda n, p: agg.GradDrop(),
        random=True,  # one uniform per coordinate, whatever the task order: still invariant
        weights=False,
    ),
)
