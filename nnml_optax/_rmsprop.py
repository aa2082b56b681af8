"""rmsprop and its further developments (lecture 6e; Tieleman & Hinton 2012).

The slide keeps a running average of the squared gradient per weight and divides the gradient by
its root; its "further developments" add standard or Nesterov momentum. :func:`rmsprop` is built
from public parts, as optax builds it: :func:`scale_by_rms`, the learning rate and
:func:`~nnml_optax.scale_by_momentum`. See docs/lecture.md, section 6e.
"""

from __future__ import annotations

import numbers
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _core, _tracing
from ._momentum import scale_by_momentum

Convention = Literal["torch", "keras", "tf1"]

# convention -> (eps_in_sqrt, initial_scale); torch also applies the learning rate after the
# momentum buffer instead of before it.
_PRESETS: dict[str | None, tuple[bool, float]] = {
  None: (True, 0.0),  # the lecture, as optax writes it
  "torch": (False, 0.0),
  "keras": (True, 0.0),
  "tf1": (True, 1.0),
}


class RmsState(NamedTuple):
  """State of :func:`scale_by_rms`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    mean_square: running average of :math:`|g|^2`, one real array per parameter.
    hyperparams_used: ``(decay, eps, initial_scale)`` as last used (see
      :func:`nnml_optax.hyperparams`).
  """

  count: jax.Array
  mean_square: optax.Updates
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("decay", "eps", "initial_scale")


class CenteredRmsState(NamedTuple):
  """State of :func:`scale_by_rms` with ``centered=True``.

  Attributes:
    count: number of updates so far (int32).
    variance: running variance :math:`n_t - |m_t|^2` of the gradient (real), kept directly.
    mean_grad: running average :math:`m_t` of :math:`g`.
    hyperparams_used: ``(decay, eps, initial_scale)`` as last used.
  """

  count: jax.Array
  variance: optax.Updates
  mean_grad: optax.Updates
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("decay", "eps", "initial_scale")


def _abs_sq(x: jax.Array) -> jax.Array:
  return jnp.real(x) ** 2 + jnp.imag(x) ** 2 if jnp.iscomplexobj(x) else x * x


def _over(a: Any, rho: Any) -> Any:
  """``a / ρ`` for ``ρ >= 0``, finite at ``ρ = 0`` (where it multiplies 0: the new mean is ``g``)."""
  tiny = float(np.finfo(np.float32).tiny)
  return a / (max(rho, tiny) if isinstance(rho, numbers.Real) else jnp.maximum(rho, tiny))


@jax.custom_jvp
def _sqrt(x: jax.Array) -> jax.Array:
  """``sqrt(x)`` for ``x >= 0`` whose derivative at 0 is 0 (a statistic that stays 0 while the
  gradient is 0), not inf: derivatives through an update then do not become 0 * inf = NaN."""
  return jnp.sqrt(x)


@_sqrt.defjvp
def _sqrt_jvp(primals: tuple, tangents: tuple) -> tuple[jax.Array, jax.Array]:
  (x,), (t,) = primals, tangents
  y = jnp.sqrt(x)
  positive = x > 0
  return y, jnp.where(positive, t / (2 * jnp.where(positive, y, 1)), 0)


def _real_at_least(x: Any, lo: float) -> bool:
  """Whether ``x`` is a plain real number >= ``lo`` (not a schedule or an injected array)."""
  return isinstance(x, numbers.Real) and float(x) >= lo


def scale_by_rms(
  decay: optax.ScalarOrSchedule = 0.9,
  eps: optax.ScalarOrSchedule = 1e-8,
  initial_scale: float = 0.0,
  eps_in_sqrt: bool = True,
  bias_correction: bool = False,
  *,
  centered: bool = False,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Divides the gradient by the root of its running mean square (rmsprop's direction, 6e).

  .. math::

    n_t = \rho\, n_{t-1} + (1-\rho)\, |g_t|^2, \qquad
    \text{out}_t = g_t / \sqrt{n_t + \epsilon} \;\;(\text{or } g_t / (\sqrt{n_t} + \epsilon))

  Centered (Graves 2013) divides by the running variance :math:`\sigma^2_t = n_t - |m_t|^2`,
  :math:`m_t = \rho m_{t-1} + (1-\rho) g_t`, kept directly as
  :math:`\sigma^2_t = \rho(\sigma^2_{t-1} + (1-\rho)|g_t - m_{t-1}|^2)` so it never cancels below 0.
  The direction is unsigned; chain a learning rate (or use :func:`rmsprop`). Same signature as
  ``optax.scale_by_rms`` and, in float32/float64, the same bits; the statistics saturate at their
  dtype's largest value, and a zero denominator (``eps=0``) gives a zero step. Complex gradients
  share one real mean square per parameter.

  Args:
    decay: :math:`\rho \in [0, 1)`, a float or a schedule of the step count.
    eps: :math:`\epsilon \ge 0`, a float or a schedule.
    initial_scale: :math:`n_0 \ge 0`, read at ``init`` (1 in TF1, else 0).
    eps_in_sqrt: :math:`\epsilon` inside the root (optax, Keras, TF1) or outside (torch).
    bias_correction: divide the statistics by :math:`1 - \rho^{t+1}` (:math:`\rho` at step t).
    centered: divide by the running standard deviation; doubles the state.
    accumulator_dtype: dtype of the statistics; ``None`` uses each parameter's dtype. With
      bfloat16 parameters (as in optax and torch) a long average loses its increments: after
      1,000 constant gradients at decay 0.999 the step is 1.59x too large; ``jnp.float32``
      fixes it (docs/porting.md).

  Returns:
    An ``optax.GradientTransformation`` with state :class:`RmsState` (:class:`CenteredRmsState`).

  Raises:
    ValueError: a hyperparameter is out of range.
    TypeError: a flag is not a bool, or ``initial_scale`` is a schedule.

  Examples:
    >>> import jax.numpy as jnp, nnml_optax
    >>> tx = nnml_optax.scale_by_rms(0.9, eps=0.0)
    >>> u, _ = tx.update(jnp.array([5.0, -0.001]), tx.init(jnp.zeros(2)))
    >>> print(u.round(4))  # first step: sign(g)/sqrt(1 - decay)
    [ 3.1623 -3.1623]

  References:
    Tieleman & Hinton, Neural Networks for Machine Learning, lecture 6e, 2012.
    Graves, "Generating sequences with recurrent neural networks", arXiv:1308.0850, 2013.
  """
  _core.check_range("decay", decay, 0.0, 1.0, hi_open=True)
  _core.check_range("eps", eps, 0.0, None)
  _core.check_range("initial_scale", initial_scale, 0.0, None, schedule=False)
  for name, flag in [("eps_in_sqrt", eps_in_sqrt), ("bias_correction", bias_correction)]:
    _core.check_bool(name, flag)
  _core.check_bool("centered", centered)
  _core.check_dtype("accumulator_dtype", accumulator_dtype)
  # A plain eps >= float32's smallest normal keeps every denominator positive: no 0/0 guard.
  eps_positive = _real_at_least(eps, float(np.finfo(np.float32).tiny))

  def init_fn(params):
    def full(p, value, real=False):
      dtype = _core.state_dtype(p, accumulator_dtype)
      return _core.full_like(p, value, _core.real_dtype(dtype) if real else dtype)

    second = jax.tree.map(lambda p: full(p, initial_scale, real=True), params)
    used = _core.record_init(params, decay, eps, initial_scale)
    if not centered:
      return RmsState(_core.count_zero(), second, used)
    mean_grad = jax.tree.map(lambda p: full(p, 0), params)
    return CenteredRmsState(_core.count_zero(), second, mean_grad, used)

  def update_fn(updates, state, params=None):
    del params
    rho = _core.resolve(decay, state.count)
    count = _core.safe_increment(state.count)
    debias = 1 - rho**count if bias_correction else None
    at = _core.hypers_at(state.count, rho, 1 - rho, eps, debias, _over(1 - rho, rho))
    used = _core.record(
      state.hyperparams_used[0].dtype, rho, _core.resolve(eps, state.count), initial_scale
    )

    def rule(g, second, mean_grad=None):
      ct = _core.compute_dtype(g.dtype, *[x.dtype for x in (second, mean_grad) if x is not None])
      rt = _core.real_dtype(ct)
      d, omd, e, debias, omd_d = at(rt)
      gc = g.astype(ct)
      if mean_grad is None:
        var = omd * _abs_sq(gc) + d * second.astype(rt)  # n = ρn + (1−ρ)|g|²
        new_mg = None
      else:
        new_mg = omd * gc + d * mean_grad.astype(ct)  # m = ρm + (1−ρ)g
        # σ² = ρ(σ² + (1−ρ)|g − m_old|²) = ρσ² + (1−ρ)/ρ |g − m|², as g − m = ρ(g − m_old)
        var = d * second.astype(rt) + omd_d * _abs_sq(gc - new_mg)
      big = jnp.asarray(jnp.finfo(second.dtype).max, rt)
      var = jnp.where(var > big, big, var)  # saturate instead of overflowing to inf
      var_hat = var
      if bias_correction:  # n̂ − |m̂|² = σ²/c − |m|²(1−c)/c², c = 1 − ρ^t
        var_hat = var / debias
        if new_mg is not None:
          var_hat = jnp.maximum(var_hat - _abs_sq(new_mg) * (1 - debias) / debias**2, 0)
      arg = var_hat + e if eps_in_sqrt else _sqrt(var_hat) + e
      if eps_positive:
        inv = jax.lax.rsqrt(arg) if eps_in_sqrt else 1 / arg
      else:  # 0/0 (g = 0, eps = 0) is a zero step
        safe = jnp.where(arg > 0, arg, 1)
        inv = jnp.where(arg > 0, jax.lax.rsqrt(safe) if eps_in_sqrt else 1 / safe, 0)
      new_mg = None if new_mg is None or mean_grad is None else new_mg.astype(mean_grad.dtype)
      return (inv * gc).astype(g.dtype), var.astype(second.dtype), new_mg

    if centered:
      out = _tracing.map_leaves(rule, updates, state.variance, state.mean_grad)
      u, var, mg = _core.unzip(out, updates, 3)
      return u, CenteredRmsState(count, var, mg, used)
    u, ms, _ = _core.unzip(_tracing.map_leaves(rule, updates, state.mean_square), updates, 3)
    return u, RmsState(count, ms, used)

  return optax.GradientTransformation(init_fn, update_fn)


def rmsprop(
  learning_rate: optax.ScalarOrSchedule,
  decay: optax.ScalarOrSchedule = 0.9,
  eps: optax.ScalarOrSchedule = 1e-8,
  initial_scale: float | None = None,
  eps_in_sqrt: bool | None = None,
  centered: bool = False,
  momentum: optax.ScalarOrSchedule | None = None,
  nesterov: bool = False,
  bias_correction: bool = False,
  *,
  convention: Convention | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""rmsprop (lecture 6e), with momentum, Nesterov momentum, or a framework's exact convention.

  With :math:`s_t` the output of :func:`scale_by_rms`, :math:`\epsilon_t` the learning rate:

  .. math::

    v_t = \mu_t v_{t-1} - \epsilon_t s_t, \qquad
    \Delta w_t = v_t \;\text{ or, Nesterov, }\; \mu_t v_t - \epsilon_t s_t

  (:math:`\Delta w_t = -\epsilon_t s_t` without ``momentum``). This is
  ``optax.chain(scale_by_rms(...), optax.scale_by_learning_rate(lr), scale_by_momentum(...))``:
  the learning rate inside the velocity as on the slide and in optax, Keras and TF1. Nesterov
  returns the look-ahead iterate, the RMS dividing only the correction (slide 6e-05).
  ``convention="torch"`` accumulates :math:`s_t` and applies the rate after the buffer (they
  differ only under a learning-rate schedule), with ``eps`` outside the root; ``"keras"`` is the
  default form and ``"tf1"`` starts the mean square at 1. Pass the framework's own ``decay`` and
  ``eps`` (torch: 0.99, 1e-8; Keras: 0.9, 1e-7; TF1: 0.9, 1e-10). See docs/porting.md.

  Args:
    learning_rate: :math:`\epsilon \ge 0`, a float or a schedule.
    decay, eps, initial_scale, eps_in_sqrt, bias_correction, centered: see :func:`scale_by_rms`;
      ``None`` takes the convention's value, and an explicit one must agree with it.
    momentum: ``None`` (no buffer) or :math:`\mu \in [0, 1)`, a float or a schedule.
    nesterov: Nesterov momentum; needs ``momentum`` and ``convention=None``.
    convention: ``None`` (the lecture, optax), ``"torch"``, ``"keras"`` or ``"tf1"``.
    accumulator_dtype: dtype of the state arrays; ``None`` uses each parameter's dtype (with
      bfloat16 parameters, a step 1.59x too large after 1,000 constant gradients at decay
      0.999: pass ``jnp.float32``; see :func:`scale_by_rms`).

  Returns:
    An ``optax.GradientTransformationExtraArgs``, positionally compatible with ``optax.rmsprop``.

  Raises:
    ValueError: a hyperparameter is out of range, an unknown ``convention``, a setting that
      contradicts it, or ``nesterov=True`` without ``momentum`` or with a convention.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.rmsprop(0.01)
    >>> w = jnp.array([1.0]); u, _ = tx.update(2 * w, tx.init(w))
    >>> print(optax.apply_updates(w, u).round(4))  # 1 - 0.01/sqrt(0.1)
    [0.9684]

  References:
    Tieleman & Hinton, Neural Networks for Machine Learning, lecture 6e, 2012.
    Sutskever, Martens, Dahl & Hinton, ICML 2013 (Nesterov momentum, look-ahead form).
  """
  _core.check_range("learning_rate", learning_rate, 0.0, None)
  _core.check_choice("convention", convention, list(_PRESETS))
  _core.check_bool("nesterov", nesterov)
  preset_sqrt, preset_scale = _PRESETS[convention]
  if eps_in_sqrt is None:
    eps_in_sqrt = preset_sqrt
  elif convention is not None and eps_in_sqrt != preset_sqrt:
    raise ValueError(
      f"eps_in_sqrt={eps_in_sqrt} contradicts convention={convention!r}, which puts eps "
      f"{'inside' if preset_sqrt else 'outside'} the square root; leave eps_in_sqrt=None"
    )
  if initial_scale is None:
    initial_scale = preset_scale
  elif convention is not None and _core.concrete_value(initial_scale) not in (None, preset_scale):
    raise ValueError(
      f"initial_scale={initial_scale} contradicts convention={convention!r}, which starts the "
      f"mean square at {preset_scale}; leave initial_scale=None"
    )
  if nesterov and momentum is None:
    raise ValueError("nesterov=True needs momentum (a float in [0, 1) or a schedule); got None")
  if nesterov and convention is not None:
    raise ValueError(f"nesterov=True needs convention=None; {convention!r} has no Nesterov rmsprop")
  rms = scale_by_rms(
    decay,
    eps,
    initial_scale,
    eps_in_sqrt,
    bias_correction,
    centered=centered,
    accumulator_dtype=accumulator_dtype,
  )
  lr = _core.scale_by_learning_rate(learning_rate)
  if momentum is None:
    return optax.chain(rms, lr)
  mom = scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
  return optax.chain(rms, mom, lr) if convention == "torch" else optax.chain(rms, lr, mom)
