"""Registry entries: vSGD, "no more pesky learning rates" (lecture 6e)."""

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

import nnml_optax as nn

from . import E


def GRAD_FN(loss_fn, params) -> dict:
  """``grad_fn=`` wrapped in ``jax.tree_util.Partial`` so it can cross a ``jax.jit`` boundary as an
  argument (``test_apply_if_finite`` jits ``tx.update`` itself; a bare function is not a valid
  jit argument)."""
  del params
  return {"grad_fn": jax.tree_util.Partial(jax.grad(loss_fn))}


def CURVATURE(loss_fn, params) -> dict:  # a constant-like name, as GRAD_FN
  """``curvature=``: the exact |diagonal of the Hessian| (small pytrees only)."""
  flat, unravel = ravel_pytree(jax.tree.map(lambda p: p.astype(jnp.float32), params))
  diag = jnp.diag(jax.hessian(lambda f: loss_fn(unravel(f)))(flat))
  curv = unravel(jnp.abs(diag))
  return {"curvature": jax.tree.map(lambda h, p: h.astype(p.dtype), curv, params)}


# n0=2 so that the 2-3 step checks exercise real (non-zero) steps after the slow start.
# Rosenbrock (default tolerances everywhere, more steps): vSGD's diagonal rate ignores the x-y
# coupling of the curved valley, so it crawls along it like any diagonal method; with curvature= it
# needs ~1000 steps to get below 1e-2 (3000 give 7e-5). With grad_fn= the finite-difference step
# delta = gbar is huge at the start (|g| ~ 200 at (-1.2, 1)), which overestimates the curvature and
# keeps the rates small for ~1000 steps; the valley is then followed slowly and the exact path is
# round-off sensitive (5000 steps gave 5e-3 in one run and 4e-2 in another), so 8000 steps (4e-6).
ENTRIES = [
  E(
    "vsgd_fd",
    nn.vsgd,
    dict(learning_rate=1.0, c=2.0, n0=2, eps=1e-12, outlier_threshold=2.0),
    extra=GRAD_FN,
    static=("n0",),
    zoo_steps=8000,
  ),
  E(
    "vsgd_curvature",
    nn.vsgd,
    dict(learning_rate=1.0, c=2.0, n0=2, eps=1e-12),
    extra=CURVATURE,
    static=("n0",),
    zoo_steps=3000,
  ),
  E(
    "scale_by_vsgd_fd",
    nn.scale_by_vsgd,
    dict(c=2.0, n0=2, eps=1e-12),
    extra=GRAD_FN,
    static=("n0",),
    lr=1.0,
    zoo_steps=8000,
  ),
  E(
    "scale_by_vsgd_curvature_robust",
    nn.scale_by_vsgd,
    dict(c=2.0, n0=2, eps=1e-12, robust=True),
    extra=CURVATURE,
    static=("n0", "robust"),
    lr=1.0,
    zoo_steps=3000,
  ),
]
