"""Registry entries: nonlinear conjugate gradient (lecture 6a, the 6e summary slide).

``conjugate_gradient`` is called as ``optax.lbfgs`` is: ``update(g, state, params, value=...,
grad=..., value_fn=...)`` (:func:`LINESEARCH`). Two registry checks cannot apply to a line-search
transform, as for ``optax.lbfgs``, and are marked ``not_applicable``:

* unknown extra args: optax's line search forwards every extra keyword to ``value_fn`` (they are
  the objective's data) and raises ``TypeError`` for one that ``value_fn`` does not take;
* ``optax.masked``: ``grad=`` and ``value_fn`` are of the whole parameter tree while the line
  search sees the masked subtree.

The other checks close over callable extra args (``value_fn``) instead of passing them to
``jax.jit`` as arguments. Fletcher–Reeves and the other methods are exercised in ``test_cg.py``.

``scale_by_conjugate_gradient`` alone is a plain direction (no extra args); on the zoo it runs at a
fixed rate (6000 steps), without the line search its conjugacy assumes. The aliases get 100 zoo steps: with the
line search they converge in tens.
"""

import jax

import nnml_optax as nn

from . import E


def LINESEARCH(loss_fn, params) -> dict:
  """``value=``, ``grad=`` and ``value_fn=`` as optax's line searches read them."""
  g = jax.tree.map(lambda gi, p: gi.astype(p.dtype), jax.grad(loss_fn)(params), params)
  return {"value": loss_fn(params), "grad": g, "value_fn": loss_fn}


ENTRIES = [
  E(
    "conjugate_gradient",
    nn.conjugate_gradient,
    dict(method="polak-ribiere+"),
    extra=LINESEARCH,
    static=("method", "restart_every"),
    zoo_steps=100,
    not_applicable={
      "unknown_extra_args": "the line search passes extra args to value_fn (optax's contract)",
      "masked": "grad= and value_fn cover the whole tree; the line search sees the masked subtree",
    },
  ),
  E(
    "scale_by_conjugate_gradient",
    nn.scale_by_conjugate_gradient,
    dict(method="hestenes-stiefel"),
    static=("method", "restart_every"),
    lr=0.003,
    zoo_steps=6000,
    # at a fixed rate, without the line search, CG is not a descent method: on Rosenbrock it
    # hovers about 1e-2 (4.8e-3 after 2000 steps, 1.2e-2 after 6000)
    zoo_tol={"rosenbrock": 3e-2},
  ),
]
