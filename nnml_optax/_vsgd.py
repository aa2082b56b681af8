"""vSGD, "no more pesky learning rates" (lecture 6e; Schaul, Zhang & LeCun 2013).

The per-parameter rate that minimises the expected loss after one step on a noisy quadratic,
η* = E[g]² / (h E[g²]), with the expectations estimated by moving averages whose memory τ adapts
itself. Not the 2024 "variational stochastic gradient descent" that shares the acronym.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optax

from . import _core, _tracing


class ScaleByVsgdState(NamedTuple):
  """State of :func:`scale_by_vsgd`: five arrays per parameter (20 bytes/param in float32).

  During the first ``n0`` calls the four averages hold running sample means.

  Attributes:
    count: number of calls so far (int32), the step at which schedules are read.
    gbar: moving average of the gradient, :math:`\\bar g`.
    vbar: moving average of the squared gradient, :math:`\\bar v`.
    hbar: moving average of the curvature sample, :math:`\\bar h`.
    vhbar: moving average of the squared curvature sample, :math:`\\bar v_h`.
    tau: the adaptive memory :math:`\\tau \\ge 1`.
    hyperparams_used: ``(c, n0, eps, outlier_threshold, robust)`` as last used (``None`` as
      ``+inf``; ``robust`` 1 or 0, or -1 before the first update when the extra argument decides
      it); see :func:`nnml_optax.hyperparams`.
  """

  count: jax.Array
  gbar: Any
  vbar: Any
  hbar: Any
  vhbar: Any
  tau: Any
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("c", "n0", "eps", "outlier_threshold", "robust")


def _is_tracer(x: Any) -> bool:
  return isinstance(x, jax.core.Tracer)


def _align(tree: Any, like: Any, name: str) -> Any:
  """``tree`` with the structure of ``like`` (matched by key path where the two differ).

  ``optax.masked`` hands the inner transform masked updates but the extra arguments unmasked, so
  a full-tree ``curvature`` (or a full-tree gradient from ``grad_fn``) is cut down to the leaves
  the updates have.
  """
  if jax.tree.structure(tree) == jax.tree.structure(like):
    return tree
  source = dict(jax.tree_util.tree_flatten_with_path(tree)[0])
  paths, treedef = jax.tree_util.tree_flatten_with_path(like)
  leaves = []
  for path, _ in paths:
    if path not in source:
      raise ValueError(
        f"{name} must have the structure of the updates; it has no leaf at "
        f"{jax.tree_util.keystr(path)!r} (structure {jax.tree.structure(tree)})"
      )
    leaves.append(source[path])
  return treedef.unflatten(leaves)


def _check_curvature(curvature: Any) -> None:
  """Eager check: a concrete curvature estimate must be non-negative (traced ones: |h|)."""
  for leaf in jax.tree.leaves(curvature):
    if _is_tracer(leaf):
      continue
    arr = np.asarray(leaf)
    if np.iscomplexobj(arr):
      raise TypeError("curvature must be real")
    if arr.size and bool(np.any(arr < 0)):
      raise ValueError(
        f"curvature must be a non-negative diagonal estimate; got a minimum of {arr.min()!r}"
        " (pass a Gauss-Newton / |Hessian| diagonal, not a signed Hessian diagonal)"
      )


def _curvature_fd(g, p, p2, g2):
  """The finite-difference curvature sample ``h = |g(θ + δ) − g(θ)| / |δ|`` (0 where δ = 0)."""
  delta = p2 - p  # the perturbation realised in the parameter dtype
  nz = delta != 0
  return jnp.where(nz, jnp.abs(g2 - g), 0) / jnp.where(nz, jnp.abs(delta), 1)


def _vsgd_leaf(hps, in_init, finalize, n0, robust, g, gbar, vbar, hbar, vhbar, tau, *curv):
  """vSGD-l for one leaf: returns the direction and the five new state arrays."""
  c, eps, k = hps
  ct = _core.compute_dtype(g.dtype, gbar.dtype)
  g, gbar, vbar, hbar, vhbar, tau, *curv = (
    x.astype(ct) for x in (g, gbar, vbar, hbar, vhbar, tau, *curv)
  )
  h = _curvature_fd(g, *curv) if len(curv) == 3 else jnp.abs(curv[0])
  n0 = jnp.asarray(n0, ct)
  if k is not None:  # an outlier (beyond k standard deviations) lengthens the memory by 1
    outlier = jnp.abs(g - gbar) > k * jnp.sqrt(jnp.maximum(vbar - gbar * gbar, 0))
    tau = tau + (outlier & ~in_init).astype(ct)

  def average(old, sample, inflate=None):
    start = old + (1 / n0) * sample  # slow start: the running mean of the first n0 samples
    if inflate is not None:
      start = jnp.where(finalize, inflate * start, start)  # over-estimated at the n0-th call
    run = ((tau - 1) * old + sample) / tau  # (1 − 1/τ) old + (1/τ) sample
    return jnp.where(in_init, start, run)

  gbar, vbar = average(gbar, g), average(vbar, g * g, c)
  hbar, vhbar = average(hbar, h, c), average(vhbar, h * h, c * c)
  r = jnp.clip(gbar * gbar / (vbar + eps), 0, 1)  # the fraction of E[g²] that is signal
  eta = r * hbar / (vhbar + eps) if robust else r / (hbar + eps)
  noise = jnp.maximum(vbar + eps - gbar * gbar, 0) / (vbar + eps)  # 1 − r, the rest: noise
  tau = jnp.where(in_init, jnp.where(finalize, n0, tau), noise * tau + 1)
  return jnp.where(in_init, 0, eta * g), gbar, vbar, hbar, vhbar, tau


def scale_by_vsgd(
  c: optax.ScalarOrSchedule = 2.0,
  n0: int = 10,
  *,
  eps: optax.ScalarOrSchedule = 1e-12,
  outlier_threshold: optax.ScalarOrSchedule | None = 2.0,
  robust: bool | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Element-wise vSGD-l with adaptive memory (Schaul, Zhang & LeCun 2013; lecture 6e).

  Each call takes the gradient :math:`g` (the incoming updates) and a curvature sample
  :math:`h \ge 0`, and with :math:`a = 1/\tau` updates, in this order,

  .. math::

    \bar x \leftarrow (1-a)\,\bar x + a\,x \ \text{ for } (\bar g, \bar v, \bar h, \bar v_h)
      \text{ and } x = (g, g^2, h, h^2), \qquad
    r = \mathrm{clip}\big(\bar g^2 / (\bar v + \varepsilon), 0, 1\big), \\
    \eta = r\, \bar h / (\bar v_h + \varepsilon) \text{ (robust) or }
      r / (\bar h + \varepsilon), \qquad
    \tau \leftarrow (1 - r)\,\tau + 1, \qquad \text{out} = \eta\, g .

  The first ``n0`` calls collect sample means and return zeros; at the ``n0``-th the averages
  of :math:`g^2, h, h^2` are inflated by :math:`C, C, C^2` and :math:`\tau = n_0`. An outlier,
  :math:`|g - \bar g| > k \sqrt{\bar v - \bar g^2}`, first adds 1 to :math:`\tau`. The
  curvature comes from an extra argument of ``update``: ``grad_fn`` (params -> gradient on the
  same mini-batch; :math:`h = |f(\theta + \bar g) - g| / |\bar g|`; needs ``params``) or
  ``curvature`` (a non-negative diagonal estimate shaped like the updates).

  Args:
    c: the slow-start constant :math:`C \ge 1`.
    n0: number of initial samples :math:`n_0 \ge 1` (an int; ``optax.inject_hyperparams`` may
      inject it like the floats).
    eps: :math:`\varepsilon > 0`, added to the denominators.
    outlier_threshold: :math:`k > 0`, or ``None`` for no outlier detection.
    robust: the rate form; ``None``: robust with ``grad_fn``, not with ``curvature``.
    accumulator_dtype: dtype of the five state arrays (``None``: float32, float64 for float64
      parameters).

  Returns:
    An ``optax.GradientTransformationExtraArgs`` returning the unsigned direction.

  Raises:
    ValueError: a hyperparameter out of range; neither or both of ``grad_fn`` and ``curvature``;
      a negative concrete ``curvature``.
    TypeError: complex parameters.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 10.0]) * w ** 2)
    >>> tx = optax.chain(nnml_optax.scale_by_vsgd(c=2.0, n0=2), optax.scale(-1.0))
    >>> w = jnp.array([1.0, 1.0]); state = tx.init(w)
    >>> for _ in range(40):
    ...   updates, state = tx.update(jax.grad(f)(w), state, w, grad_fn=jax.grad(f))
    ...   w = optax.apply_updates(w, updates)
    >>> print(f(w) < 1e-4)
    True

  References:
    Schaul, Zhang & LeCun, "No more pesky learning rates", ICML 2013.
    Schaul & LeCun, "Adaptive learning rates and parallelization for stochastic, sparse,
    non-smooth gradients", ICLR 2013.
  """
  _core.check_range("c", c, 1.0, None)
  _core.check_int("n0", n0, 1, None)
  _core.check_range("eps", eps, 0.0, None, lo_open=True)
  if outlier_threshold is not None:
    _core.check_range("outlier_threshold", outlier_threshold, 0.0, None, lo_open=True)
  if robust is not None:
    _core.check_bool("robust", robust)
  _core.check_dtype("accumulator_dtype", accumulator_dtype)

  def _sdtype(p):
    if jnp.iscomplexobj(p):
      raise TypeError(f"scale_by_vsgd supports real parameters only; got {p.dtype}")
    if accumulator_dtype is not None:
      return jnp.dtype(accumulator_dtype)
    return _core.compute_dtype(p.dtype)

  def init_fn(params):
    def zeros(p):
      return _core.zeros_like(p, _sdtype(p))

    return ScaleByVsgdState(
      count=_core.count_zero(),
      gbar=jax.tree.map(zeros, params),
      vbar=jax.tree.map(zeros, params),
      hbar=jax.tree.map(zeros, params),
      vhbar=jax.tree.map(zeros, params),
      tau=jax.tree.map(lambda p: _core.full_like(p, 1, _sdtype(p)), params),
      hyperparams_used=_core.record_init(
        params, c, n0, eps, outlier_threshold, -1.0 if robust is None else float(robust)
      ),
    )

  def update_fn(updates, state, params=None, *, grad_fn=None, curvature=None, **extra_args):
    del extra_args
    if grad_fn is None and curvature is None:
      raise ValueError(
        "scale_by_vsgd needs a curvature source: pass the extra argument `grad_fn` (a function "
        "params -> gradient on the same mini-batch, for finite differences) or `curvature` (a "
        "non-negative diagonal estimate), e.g. update(grads, state, params, grad_fn=grad_fn)"
      )
    if grad_fn is not None and curvature is not None:
      raise ValueError("scale_by_vsgd: pass only one of `grad_fn` and `curvature`, not both")
    fd = grad_fn is not None
    use_robust = fd if robust is None else robust
    count = state.count
    in_init = count < n0
    finalize = count == n0 - 1

    if fd:
      if not callable(grad_fn):
        raise TypeError(f"grad_fn must be callable (params -> gradient); got {grad_fn!r}")
      if params is None:
        raise ValueError("scale_by_vsgd(grad_fn=...) needs `params`: update(grads, state, params)")

      def perturb(g, p, gb):
        ct = gb.dtype
        delta = jnp.where(in_init, g.astype(ct), gb)
        return (p.astype(ct) + delta).astype(p.dtype)

      shifted = jax.tree.map(perturb, updates, params, state.gbar)
      second = _align(grad_fn(shifted), updates, "grad_fn(params)")
      extra = (params, shifted, second)
    else:
      curvature = _align(curvature, updates, "curvature")
      _check_curvature(curvature)
      extra = (curvature,)

    hps = _core.hypers_at(count, c, eps, outlier_threshold)

    def leaf(g, gbar, vbar, hbar, vhbar, tau, *curv):
      state = (gbar, vbar, hbar, vhbar, tau)
      hp = hps(_core.compute_dtype(g.dtype, gbar.dtype))
      out, *new = _vsgd_leaf(hp, in_init, finalize, n0, use_robust, g, *state, *curv)
      return out.astype(g.dtype), *(x.astype(s.dtype) for x, s in zip(new, state, strict=True))

    tuples = _tracing.map_leaves(
      leaf, updates, state.gbar, state.vbar, state.hbar, state.vhbar, state.tau, *extra
    )
    out, gbar, vbar, hbar, vhbar, tau = _core.unzip(tuples, updates, 6)
    used = _core.record(
      state.hyperparams_used[0].dtype, *hps.resolved[:1], n0, *hps.resolved[1:], float(use_robust)
    )
    return out, ScaleByVsgdState(_core.safe_increment(count), gbar, vbar, hbar, vhbar, tau, used)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def vsgd(
  learning_rate: optax.ScalarOrSchedule = 1.0,
  c: optax.ScalarOrSchedule = 2.0,
  n0: int = 10,
  *,
  eps: optax.ScalarOrSchedule = 1e-12,
  outlier_threshold: optax.ScalarOrSchedule | None = 2.0,
  robust: bool | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""vSGD, "no more pesky learning rates": :math:`\theta \leftarrow \theta - \epsilon\,\eta g`.

  ``optax.chain(scale_by_vsgd(...), optax.scale_by_learning_rate(learning_rate))``: the
  per-parameter rates :math:`\eta` come from :func:`scale_by_vsgd` (see it for the other
  arguments); ``learning_rate`` is a global multiplier whose default 1.0 is the paper's method.
  Call ``update`` with ``grad_fn=`` or ``curvature=``; wrap ``grad_fn`` in
  ``jax.tree_util.Partial`` to pass it through ``jax.jit``. Not the 2024 "variational SGD".

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)
    >>> tx = nnml_optax.vsgd(n0=2)
    >>> w = jnp.array([1.0, 1.0]); state = tx.init(w)
    >>> for _ in range(40):
    ...   updates, state = tx.update(jax.grad(f)(w), state, w, grad_fn=jax.grad(f))
    ...   w = optax.apply_updates(w, updates)
    >>> print(f(w) < 1e-3)
    True

  References:
    Schaul, Zhang & LeCun, "No more pesky learning rates", ICML 2013.
  """
  _core.check_range("learning_rate", learning_rate, 0.0, None)
  return optax.chain(
    scale_by_vsgd(
      c,
      n0,
      eps=eps,
      outlier_threshold=outlier_threshold,
      robust=robust,
      accumulator_dtype=accumulator_dtype,
    ),
    _core.scale_by_learning_rate(learning_rate),
  )
