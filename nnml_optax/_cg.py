"""Nonlinear conjugate gradient: the summary slide's full-batch method (lecture 6a, 6e).

Hestenes & Stiefel 1952; Fletcher & Reeves 1964; Polak & Ribière 1969; Dai & Yuan 1999;
Nocedal & Wright 2006, ch. 5.

A direction transform that keeps the previous gradient and direction (8 bytes per float32
parameter), chained, as ``optax.lbfgs`` is, with a line search that finds the step along it: by
default optax's zoom line search (strong Wolfe) with the tighter curvature condition Nocedal & Wright
advise for conjugate gradient (``curv_rtol=0.1``, where optax's L-BFGS uses 0.9).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import _core
from ._core import ScalarOrSchedule

Method = Literal["polak-ribiere+", "fletcher-reeves", "hestenes-stiefel", "dai-yuan"]
METHODS: tuple[str, ...] = ("polak-ribiere+", "fletcher-reeves", "hestenes-stiefel", "dai-yuan")


class ScaleByConjugateGradientState(NamedTuple):
  """State of :func:`scale_by_conjugate_gradient`.

  Attributes:
    count: number of updates so far (int32); the first update, and every ``restart_every``-th, is
      steepest descent.
    prev_gradient: the gradient :math:`g_{k-1}` of the previous update, in the parameters' dtype,
      initially 0.
    prev_direction: the previous unsigned direction :math:`d_{k-1}` (the parameters moved by
      :math:`-\\eta_{k-1} d_{k-1}`), in the parameters' dtype, initially 0.
  """

  count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride] (optax's name)
  prev_gradient: Any
  prev_direction: Any


def _dot(a: Any, b: Any) -> jax.Array:
  """The real inner product ⟨a, b⟩ = Re Σ conj(a)·b over a whole pytree."""
  return optax.tree.real(optax.tree.vdot(a, b))


def _direction_rule(beta: jax.Array, g: jax.Array, d_prev: jax.Array) -> jax.Array:
  ct = _core.compute_dtype(g.dtype, d_prev.dtype)
  return g.astype(ct) + beta.astype(_core.real_dtype(ct)) * d_prev.astype(ct)  # d = g + β d_prev


def scale_by_conjugate_gradient(
  method: Method = "polak-ribiere+",
  restart_every: int | None = None,
) -> optax.GradientTransformation:
  r"""The nonlinear conjugate gradient direction (unsigned), to be chained with a line search.

  With :math:`g_k` the gradient, :math:`y_k = g_k - g_{k-1}` and :math:`\langle a, b\rangle =
  \operatorname{Re}\sum \bar a\, b` over the whole pytree, the returned direction (the parameters
  move by :math:`-\eta_k d_k`, :math:`\eta_k` from a line search) is

  .. math::

    d_k = g_k + \beta_k d_{k-1},\quad
    \beta^{FR} = \tfrac{\|g_k\|^2}{\|g_{k-1}\|^2},\
    \beta^{PR+} = \max\bigl(0, \tfrac{\langle g_k, y_k\rangle}{\|g_{k-1}\|^2}\bigr),\
    \beta^{HS} = \tfrac{\langle g_k, y_k\rangle}{-\langle d_{k-1}, y_k\rangle},\
    \beta^{DY} = \tfrac{\|g_k\|^2}{-\langle d_{k-1}, y_k\rangle}.

  :math:`\beta_k = 0` (steepest descent) on the first update, every ``restart_every`` updates,
  and when :math:`\beta_k` is not finite; :math:`d_k = g_k` when :math:`\langle g_k, d_k\rangle
  \le 0` (not a descent direction). The conjugacy argument needs ``updates`` to be full-batch
  gradients and the previous step to have come from a line search along :math:`-d_{k-1}`; use
  :func:`conjugate_gradient`. Complex parameters: feed the conjugated JAX gradient, as optax does.

  Args:
    method: ``"polak-ribiere+"`` (β clipped at 0), ``"fletcher-reeves"``, ``"hestenes-stiefel"``
      or ``"dai-yuan"``.
    restart_every: restart to steepest descent every this many updates (an int ≥ 1; the number of
      parameters is the textbook choice), or ``None`` for restarts on non-descent only.

  Returns:
    An ``optax.GradientTransformation`` whose state keeps two copies of the parameters.

  Raises:
    ValueError: ``method`` is not one of the four, or ``restart_every`` < 1.
    TypeError: ``restart_every`` is not an integer.

  Example:
    >>> import jax.numpy as jnp, nnml_optax
    >>> tx = nnml_optax.scale_by_conjugate_gradient()
    >>> d, state = tx.update(jnp.array([1.0, -2.0]), tx.init(jnp.zeros(2)))
    >>> print(d)
    [ 1. -2.]

  References:
    Hestenes & Stiefel, *Methods of conjugate gradients for solving linear systems*, 1952.
    Fletcher & Reeves, *Function minimization by conjugate gradients*, 1964.
    Polak & Ribière, *Note sur la convergence de méthodes de directions conjuguées*, 1969.
    Dai & Yuan, *A nonlinear conjugate gradient method with a strong global convergence
    property*, 1999. Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, ch. 5.
  """
  _core.check_choice("method", method, METHODS)
  if restart_every is not None:
    _core.check_int("restart_every", restart_every, lo=1)

  def init_fn(params: Any) -> ScaleByConjugateGradientState:
    return ScaleByConjugateGradientState(
      count=_core.count_zero(),
      prev_gradient=jax.tree.map(_core.zeros_like, params),
      prev_direction=jax.tree.map(_core.zeros_like, params),
    )

  def update_fn(  # state: Any, as optax's TransformUpdateFn takes any OptState
    updates: Any, state: Any, params: Any = None
  ) -> tuple[Any, ScaleByConjugateGradientState]:
    del params
    g, g_prev, d_prev = updates, state.prev_gradient, state.prev_direction
    y = jax.tree.map(lambda a, b: a.astype(_core.compute_dtype(a.dtype, b.dtype)) - b, g, g_prev)
    g_sq, g_prev_sq = _dot(g, g), _dot(g_prev, g_prev)
    g_y, curvature = _dot(g, y), -_dot(d_prev, y)  # curvature: ⟨p, y⟩ along p = -d_prev
    beta = {
      "fletcher-reeves": lambda: g_sq / g_prev_sq,
      "polak-ribiere+": lambda: jnp.maximum(g_y / g_prev_sq, 0.0),
      "hestenes-stiefel": lambda: g_y / curvature,
      "dai-yuan": lambda: g_sq / curvature,
    }[method]()
    restart = (state.count == 0) | ~jnp.isfinite(beta)
    if restart_every is not None:
      restart |= state.count % restart_every == 0
    beta = jnp.where(restart, jnp.zeros_like(beta), beta)
    d = jax.tree.map(lambda gi, di: _direction_rule(beta, gi, di), g, d_prev)
    d = optax.tree.where(_dot(g, d) > 0, d, g)  # not a descent direction: steepest descent
    new_state = ScaleByConjugateGradientState(
      count=_core.safe_increment(state.count),
      prev_gradient=optax.tree.cast_like(g, g_prev),
      prev_direction=optax.tree.cast_like(d, d_prev),
    )
    return optax.tree.cast_like(d, updates), new_state

  return optax.GradientTransformation(init_fn, update_fn)


def _strongly_typed_init(
  tx: optax.GradientTransformationExtraArgs | optax.GradientTransformation,
) -> optax.GradientTransformationExtraArgs:
  """``tx`` whose initial state has no weakly typed scalars (optax 0.2.8's zoom line search starts
  its ``info`` that way, so the first jitted update would trace twice)."""

  def init_fn(params: Any) -> Any:
    strong = lambda x: jnp.asarray(x, x.dtype) if getattr(x, "weak_type", False) else x  # noqa: E731
    return jax.tree.map(strong, tx.init(params))

  return optax.GradientTransformationExtraArgs(init_fn, optax.with_extra_args_support(tx).update)


_LINESEARCH = optax.scale_by_zoom_linesearch(
  max_linesearch_steps=20, curv_rtol=0.1, initial_guess_strategy="one"
)


def conjugate_gradient(
  learning_rate: ScalarOrSchedule | None = None,
  method: Method = "polak-ribiere+",
  restart_every: int | None = None,
  linesearch: optax.GradientTransformationExtraArgs
  | optax.GradientTransformation
  | None = _LINESEARCH,
) -> optax.GradientTransformationExtraArgs:
  r"""Nonlinear conjugate gradient with a line search, shaped and called like ``optax.lbfgs``.

  :math:`w_{k+1} = w_k - \eta_k d_k` with :math:`d_k` from :func:`scale_by_conjugate_gradient`
  (see it for the four :math:`\beta_k`) and :math:`\eta_k` from ``linesearch``: by default
  ``optax.scale_by_zoom_linesearch(max_linesearch_steps=20, curv_rtol=0.1,
  initial_guess_strategy="one")``, a strong Wolfe search with the curvature tolerance Nocedal &
  Wright advise for conjugate gradient (Fletcher–Reeves needs it below 1/2 to descend).

  **The line-search contract** (optax's): call ``update(grads, state, params, value=f(params),
  grad=grads, value_fn=f, **data)``, where ``data`` are keyword arguments of ``f`` besides the
  parameters; each call evaluates ``f`` and its gradient up to ``max_linesearch_steps`` more times.
  ``optax.value_and_grad_from_state(f)`` reuses the value and gradient of the accepted step, so a
  full-batch loop costs one gradient per line-search evaluation. Feed full-batch gradients:
  conjugacy and the line search assume one fixed objective.

  Args:
    learning_rate: ``None`` (the line search sets the step), or a scale or schedule applied before
      it, as in ``optax.lbfgs``.
    method: see :func:`scale_by_conjugate_gradient`.
    restart_every: see :func:`scale_by_conjugate_gradient`.
    linesearch: a transform reading ``value``, ``grad`` and ``value_fn``, or ``None`` for none.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError, TypeError: see :func:`scale_by_conjugate_gradient`.

  Example:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: jnp.sum(jnp.array([1.0, 10.0]) * w**2)
    >>> tx, w = nnml_optax.conjugate_gradient(), jnp.array([1.0, 1.0])
    >>> state, value_and_grad = tx.init(w), optax.value_and_grad_from_state(f)
    >>> for _ in range(2):
    ...   v, g = value_and_grad(w, state=state)
    ...   u, state = tx.update(g, state, w, value=v, grad=g, value_fn=f)
    ...   w = optax.apply_updates(w, u)
    >>> print(f"{float(f(w)):.1e}")
    0.0e+00

  References:
    Nocedal & Wright, *Numerical Optimization*, 2nd ed., 2006, ch. 3 (line search) and 5.
  """
  scaling = (
    optax.scale(-1.0) if learning_rate is None else _core.scale_by_learning_rate(learning_rate)
  )
  return optax.chain(
    scale_by_conjugate_gradient(method, restart_every),
    scaling,
    optax.identity() if linesearch is None else _strongly_typed_init(linesearch),
  )
