"""Per-connection adaptive learning rates (lecture 6d; Jacobs 1988).

Each weight gets a local gain that multiplies the global learning rate: Hinton's rule
(:func:`scale_by_local_gains`), the gain decided by the velocity with momentum
(:func:`scale_by_local_gains_momentum`), and Jacobs' delta-bar-delta
(:func:`scale_by_delta_bar_delta`); :func:`local_gains` and :func:`delta_bar_delta` are the aliases.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import _core, _tracing


class ScaleByLocalGainsState(NamedTuple):
  """State of :func:`scale_by_local_gains`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    gains: the per-weight gains (init 1), float32 (float64 for float64 parameters).
    last_grad_sign: the sign of the previous gradient as int8 (-1, 0, 1; init 0).
    hyperparams_used: the four hyperparameters as last used (see :func:`nnml_optax.hyperparams`).
  """

  count: jax.Array
  gains: Any
  last_grad_sign: Any
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("additive_increase", "multiplicative_decrease", "min_gain", "max_gain")


class ScaleByLocalGainsMomentumState(NamedTuple):
  """State of :func:`scale_by_local_gains_momentum`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    momentum_gains: the per-weight gains (init 1), float32 (float64 for float64 parameters).
    gain_velocity: the accumulated (unsigned) direction, in the parameter dtype unless
      ``accumulator_dtype`` is given.
    hyperparams_used: the five hyperparameters as last used (see :func:`nnml_optax.hyperparams`).
  """

  count: jax.Array
  momentum_gains: Any
  gain_velocity: Any
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = (
    "momentum",
    "additive_increase",
    "multiplicative_decrease",
    "min_gain",
    "max_gain",
  )


class ScaleByDeltaBarDeltaState(NamedTuple):
  """State of :func:`scale_by_delta_bar_delta`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    rate_gains: each weight's learning rate as a multiple of the global one (init 1), float32
      (float64 for float64 parameters).
    delta_bar: Jacobs' exponential trace of past gradients :math:`\\bar\\delta` (init 0), in the
      parameter dtype unless ``accumulator_dtype`` is given.
    hyperparams_used: the four hyperparameters as last used (``max_gain=None`` as ``+inf``).
  """

  count: jax.Array
  rate_gains: Any
  delta_bar: Any
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("kappa", "phi", "theta", "max_gain")


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _check_gains(additive_increase, multiplicative_decrease, min_gain, max_gain) -> None:
  _core.check_range("additive_increase", additive_increase, 0.0, None, lo_open=True)
  _core.check_range(
    "multiplicative_decrease", multiplicative_decrease, 0.0, 1.0, lo_open=True, hi_open=True
  )
  _core.check_range("min_gain", min_gain, 0.0, None, lo_open=True)
  _core.check_range("max_gain", max_gain, 0.0, None, lo_open=True)
  lo, hi = _core.concrete_value(min_gain), _core.concrete_value(max_gain)
  if lo is not None and hi is not None and lo > hi:
    raise ValueError(f"min_gain must be <= max_gain; got min_gain={lo!r} > max_gain={hi!r}")


def _gain_dtype(leaf: Any) -> jnp.dtype:
  """Gains are float32 whatever the parameter dtype (float64 for float64 parameters): a bfloat16
  gain would round the +0.05 steps."""
  return _core.real_dtype(_core.compute_dtype(_core.state_dtype(leaf)))


def _same_sign(a: jax.Array, b: jax.Array) -> jax.Array:
  """``a·b > 0`` without forming the product (no underflow of tiny values to a false 0)."""
  return ((a > 0) & (b > 0)) | ((a < 0) & (b < 0))


def _finite_or_zero(x: jax.Array) -> jax.Array:
  """A non-finite memory entry becomes 0 ("no information"), like the int8 sign of NaN."""
  return jnp.where(jnp.isfinite(x), x, 0)


# ---------------------------------------------------------------------------------------------
# Hinton's local gains (6d)
# ---------------------------------------------------------------------------------------------


def _gains_leaf(hps, u, gain, last_sign):
  """Hinton's rule for one leaf: returns ``(G_t u_t, G_t, sign(u_t))``."""
  inc, dec, lo, hi = hps
  ct = _core.compute_dtype(u.dtype, gain.dtype)
  uc, gc = u.astype(ct), gain.astype(ct)
  new = jnp.where(uc * last_sign > 0, gc + inc, gc * dec)  # +δ or ×(1−δ)
  new = jnp.where(new > hi, hi, jnp.where(new < lo, lo, new))  # clip to [lo, hi]
  step = new * uc  # G_t u_t, with the sign of u_t as G_t > 0 (a subnormal product counts as 0)
  return step.astype(u.dtype), new.astype(gain.dtype), _core.sign_int8(step)


def scale_by_local_gains(
  additive_increase: optax.ScalarOrSchedule = 0.05,
  multiplicative_decrease: optax.ScalarOrSchedule = 0.95,
  min_gain: optax.ScalarOrSchedule = 0.1,
  max_gain: optax.ScalarOrSchedule = 10.0,
) -> optax.GradientTransformation:
  r"""Scales each coordinate by a local gain adapted from sign agreement (lecture 6d).

  With the incoming updates :math:`u_t`, :math:`G_0 = 1` and :math:`s_0 = 0`:

  .. math::

    G_t = \mathrm{clip}\big(G_{t-1} + \delta \text{ if } u_t s_{t-1} > 0 \text{ else }
      (1-\delta) G_{t-1},\ G_{\min}, G_{\max}\big), \quad \text{out}_t = G_t u_t, \quad
      s_t = \mathrm{sign}(u_t)

  Anything but a strict sign agreement decreases the gain (the first step and zero gradients
  too). The previous gradient is kept as an int8 sign. A NaN gradient gives a NaN output entry
  and stores sign 0; the gain stays finite. The direction is unsigned: chain a learning rate, or
  use :func:`local_gains`. Gains work on any direction with the gradient's sign, e.g. after
  :func:`scale_by_rms` (the lecture's "rmsprop with adaptive rates", 6e).

  Args:
    additive_increase: :math:`\delta > 0` added on agreement (lecture: 0.05).
    multiplicative_decrease: :math:`1 - \delta \in (0, 1)`, the factor otherwise (lecture: 0.95).
    min_gain: :math:`G_{\min} > 0` (lecture: 0.1 or 0.01).
    max_gain: :math:`G_{\max} \ge G_{\min}` (lecture: 10 or 100).

  Each is a float or a schedule of the step count.

  Returns:
    An ``optax.GradientTransformation``.

  Raises:
    ValueError: a hyperparameter out of range.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.scale_by_local_gains()
    >>> state = tx.init(jnp.zeros(2))
    >>> for g in ([1.0, 1.0], [1.0, -1.0], [1.0, -1.0]):
    ...   u, state = tx.update(jnp.array(g), state)
    >>> print(state.gains.round(4))  # 0.95 (first step), then +0.05 / x0.95, then +0.05
    [1.05   0.9525]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6d, 2012.
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4), 1988.
  """
  _check_gains(additive_increase, multiplicative_decrease, min_gain, max_gain)

  def init_fn(params):
    return ScaleByLocalGainsState(
      count=_core.count_zero(),
      gains=jax.tree.map(lambda p: _core.full_like(p, 1.0, _gain_dtype(p)), params),
      last_grad_sign=jax.tree.map(lambda p: _core.zeros_like(p, jnp.int8), params),
      hyperparams_used=_core.record_init(
        params, additive_increase, multiplicative_decrease, min_gain, max_gain
      ),
    )

  def update_fn(updates, state, params=None):
    del params
    consts = _core.hypers_at(
      state.count, additive_increase, multiplicative_decrease, min_gain, max_gain
    )

    def leaf(u, gain, last_sign):
      return _gains_leaf(consts(_core.compute_dtype(u.dtype, gain.dtype)), u, gain, last_sign)

    triples = _tracing.map_leaves(leaf, updates, state.gains, state.last_grad_sign)
    out, gains, signs = _core.unzip(triples, updates, 3)
    used = _core.record(state.hyperparams_used[0].dtype, *consts.resolved)
    return out, ScaleByLocalGainsState(_core.safe_increment(state.count), gains, signs, used)

  return optax.GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# gains with momentum (Jacobs; lecture 6d)
# ---------------------------------------------------------------------------------------------


def _gains_momentum_leaf(hps, u, gain, b):
  """Jacobs' rule for one leaf: returns ``(b_t, G_t, b_t)``, the stored velocity finite."""
  mu, inc, dec, lo, hi = hps
  ct = _core.compute_dtype(u.dtype, gain.dtype, b.dtype)
  uc, gc, bc = u.astype(ct), gain.astype(ct), b.astype(ct)
  new = jnp.where(_same_sign(uc, bc), gc + inc, gc * dec)
  new = jnp.where(new > hi, hi, jnp.where(new < lo, lo, new))  # clip to [lo, hi]
  velocity = _finite_or_zero(mu * bc + new * uc).astype(b.dtype)  # b_t = μ b_{t-1} + G_t u_t
  out = jnp.where(jnp.isfinite(uc), velocity, uc)  # b_t; an inf/NaN input passes through
  return out.astype(u.dtype), new.astype(gain.dtype), velocity


def scale_by_local_gains_momentum(
  momentum: optax.ScalarOrSchedule = 0.9,
  additive_increase: optax.ScalarOrSchedule = 0.05,
  multiplicative_decrease: optax.ScalarOrSchedule = 0.95,
  min_gain: optax.ScalarOrSchedule = 0.1,
  max_gain: optax.ScalarOrSchedule = 10.0,
  *,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Local gains decided by agreement with the velocity, then momentum (lecture 6d, Jacobs).

  With the incoming updates :math:`u_t`, :math:`G_0 = 1` and :math:`b_0 = 0`:

  .. math::

    G_t = \mathrm{clip}\big(G_{t-1} + \delta \text{ if } u_t b_{t-1} > 0 \text{ else }
      (1-\delta) G_{t-1},\ G_{\min}, G_{\max}\big), \quad
    b_t = \mu_t b_{t-1} + G_t u_t, \quad \text{out}_t = b_t

  Fed :math:`u_t = -\epsilon g_t` (as :func:`local_gains` does), :math:`b_t` is the lecture's
  velocity and the gain grows iff :math:`g_t v_{t-1} < 0`. The first step and zero products
  decrease the gain. A non-finite entry of :math:`b_t` is stored as 0, so the gain stays finite
  and adapts again afterwards; the update is the stored velocity, except that an inf or NaN
  input entry is returned as it is (an overflow of finite terms steps by 0).

  Args:
    momentum: :math:`\mu \in [0, 1)`.
    additive_increase, multiplicative_decrease, min_gain, max_gain: see
      :func:`scale_by_local_gains`.
    accumulator_dtype: dtype of the velocity, hence of the update's rounding (``None``: the
      parameter dtype).

  Each float is a float or a schedule of the step count.

  Returns:
    An ``optax.GradientTransformation``.

  Raises:
    ValueError: a hyperparameter out of range.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = optax.chain(optax.scale_by_learning_rate(0.1),
    ...                  nnml_optax.scale_by_local_gains_momentum(0.9))
    >>> w = jnp.zeros(1); state = tx.init(w)
    >>> for g in (1.0, 1.0, 1.0):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   w = optax.apply_updates(w, u)
    >>> print(w.round(5))  # -0.095, -0.2805, -0.55245
    [-0.55245]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6d, 2012.
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4), 1988.
  """
  _core.check_range("momentum", momentum, 0.0, 1.0, hi_open=True)
  _check_gains(additive_increase, multiplicative_decrease, min_gain, max_gain)
  _core.check_dtype("accumulator_dtype", accumulator_dtype)

  def init_fn(params):
    return ScaleByLocalGainsMomentumState(
      count=_core.count_zero(),
      momentum_gains=jax.tree.map(lambda p: _core.full_like(p, 1.0, _gain_dtype(p)), params),
      gain_velocity=jax.tree.map(
        lambda p: _core.zeros_like(p, _core.state_dtype(p, accumulator_dtype)), params
      ),
      hyperparams_used=_core.record_init(
        params, momentum, additive_increase, multiplicative_decrease, min_gain, max_gain
      ),
    )

  def update_fn(updates, state, params=None):
    del params
    consts = _core.hypers_at(
      state.count, momentum, additive_increase, multiplicative_decrease, min_gain, max_gain
    )

    def leaf(u, gain, b):
      return _gains_momentum_leaf(
        consts(_core.compute_dtype(u.dtype, gain.dtype, b.dtype)), u, gain, b
      )

    triples = _tracing.map_leaves(leaf, updates, state.momentum_gains, state.gain_velocity)
    out, gains, velocity = _core.unzip(triples, updates, 3)
    used = _core.record(state.hyperparams_used[0].dtype, *consts.resolved)
    count = _core.safe_increment(state.count)
    return out, ScaleByLocalGainsMomentumState(count, gains, velocity, used)

  return optax.GradientTransformation(init_fn, update_fn)


def local_gains(
  learning_rate: optax.ScalarOrSchedule,
  additive_increase: optax.ScalarOrSchedule = 0.05,
  multiplicative_decrease: optax.ScalarOrSchedule = 0.95,
  min_gain: optax.ScalarOrSchedule = 0.1,
  max_gain: optax.ScalarOrSchedule = 10.0,
  *,
  momentum: optax.ScalarOrSchedule | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent with a separate adaptive gain per connection (lecture 6d).

  Without momentum, :math:`\Delta w_t = -\epsilon_t G_t g_t` with Hinton's gains
  (:func:`scale_by_local_gains`); with ``momentum`` the gain follows the velocity
  (:func:`scale_by_local_gains_momentum`, Jacobs), the learning rate inside the velocity:

  .. math::

    G_t \uparrow \text{ iff } g_t v_{t-1} < 0, \qquad
    v_t = \alpha_t v_{t-1} - \epsilon_t G_t g_t, \qquad \Delta w_t = v_t

  The lecture advises full batches or big mini-batches, so that sign changes are not mostly
  sampling noise.

  Args:
    learning_rate: the global rate :math:`\epsilon \ge 0`, a float or a schedule.
    additive_increase, multiplicative_decrease, min_gain, max_gain: see
      :func:`scale_by_local_gains`.
    momentum: ``None`` (consecutive-gradient rule) or :math:`\alpha \in [0, 1)`.
    accumulator_dtype: dtype of the velocity, with ``momentum`` only.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: a hyperparameter out of range, or ``accumulator_dtype`` without ``momentum``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.local_gains(0.1)
    >>> w = jnp.zeros(1); state = tx.init(w)
    >>> for g in (1.0, 1.0, 1.0, -1.0):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   w = optax.apply_updates(w, u)
    >>> print(w.round(5))  # -0.095, -0.195, -0.3, -0.20025
    [-0.20025]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6d, 2012.
    Jacobs, Neural Networks 1(4), 1988.
  """
  _core.check_range("learning_rate", learning_rate, 0.0, None)
  if momentum is None:
    if accumulator_dtype is not None:
      raise ValueError("accumulator_dtype is only used with momentum; got momentum=None")
    return optax.chain(
      scale_by_local_gains(additive_increase, multiplicative_decrease, min_gain, max_gain),
      _core.scale_by_learning_rate(learning_rate),
    )
  return optax.chain(
    _core.scale_by_learning_rate(learning_rate),
    scale_by_local_gains_momentum(
      momentum,
      additive_increase,
      multiplicative_decrease,
      min_gain,
      max_gain,
      accumulator_dtype=accumulator_dtype,
    ),
  )


# ---------------------------------------------------------------------------------------------
# delta-bar-delta (Jacobs 1988)
# ---------------------------------------------------------------------------------------------


def _check_dbd(kappa, phi, theta, max_gain, accumulator_dtype) -> None:
  _core.check_range("kappa", kappa, 0.0, None, lo_open=True)
  _core.check_range("phi", phi, 0.0, 1.0, lo_open=True, hi_open=True)
  _core.check_range("theta", theta, 0.0, 1.0, hi_open=True)
  if max_gain is not None:
    _core.check_range("max_gain", max_gain, 0.0, None, lo_open=True)
  _core.check_dtype("accumulator_dtype", accumulator_dtype)


def _dbd_leaf(hps, u, rate, trace):
  """Delta-bar-delta for one leaf: returns ``(r_t u_t, r_t, δ̄_t)``."""
  kappa, phi, theta, max_gain = hps
  ct = _core.compute_dtype(u.dtype, rate.dtype, trace.dtype)
  uc, rc, dc = u.astype(ct), rate.astype(ct), trace.astype(ct)
  new = jnp.where(
    _same_sign(dc, uc), rc + kappa, jnp.where(_same_sign(dc, -uc), rc * (1 - phi), rc)
  )
  if max_gain is not None:
    new = jnp.minimum(new, max_gain)
  trace_new = _finite_or_zero((1 - theta) * uc + theta * dc)  # δ̄_t = (1−θ) u_t + θ δ̄_{t−1}
  return (new * uc).astype(u.dtype), new.astype(rate.dtype), trace_new.astype(trace.dtype)


def scale_by_delta_bar_delta(
  kappa: optax.ScalarOrSchedule = 0.05,
  phi: optax.ScalarOrSchedule = 0.05,
  theta: optax.ScalarOrSchedule = 0.7,
  *,
  max_gain: optax.ScalarOrSchedule | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Jacobs' delta-bar-delta: per-weight rates adapted by agreement with a gradient trace.

  Each weight's rate is a multiple :math:`r` of the global learning rate. With the incoming
  updates :math:`u_t`, :math:`r_0 = 1` and :math:`\bar\delta_0 = 0`:

  .. math::

    r_t = \begin{cases} r_{t-1} + \kappa & \bar\delta_{t-1} u_t > 0 \\
      (1-\phi)\, r_{t-1} & \bar\delta_{t-1} u_t < 0 \\
      r_{t-1} & \text{otherwise} \end{cases}, \quad
    \text{out}_t = r_t u_t, \quad \bar\delta_t = (1-\theta)\, u_t + \theta\, \bar\delta_{t-1}

  then :math:`r_t \le` ``max_gain`` when given. The step uses the updated rate. Chained with a
  learning rate :math:`\epsilon_0` (:func:`delta_bar_delta`) this is Jacobs' rule with additive
  increase :math:`\epsilon_0\kappa`. A non-finite trace entry is stored as 0.

  Args:
    kappa: :math:`\kappa > 0`, the additive increase, in units of the global learning rate.
    phi: :math:`\phi \in (0, 1)`, the fraction a rate shrinks by on a disagreement.
    theta: :math:`\theta \in [0, 1)`, the decay of the trace (Jacobs: 0.7).
    max_gain: ``None`` (no bound, as Jacobs) or an upper bound :math:`> 0` on each rate.
    accumulator_dtype: dtype of the trace (``None``: the parameter dtype).

  Each float is a float or a schedule of the step count.

  Returns:
    An ``optax.GradientTransformation``.

  Raises:
    ValueError: a hyperparameter out of range.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.scale_by_delta_bar_delta(kappa=1.0, phi=0.5, theta=0.7)
    >>> state = tx.init(jnp.zeros(1))
    >>> for g in (1.0, 1.0, -1.0, 0.5, 0.5):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   print(state.rate_gains)
    [1.]
    [2.]
    [1.]
    [2.]
    [3.]

  References:
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4), 1988.
  """
  _check_dbd(kappa, phi, theta, max_gain, accumulator_dtype)

  def init_fn(params):
    return ScaleByDeltaBarDeltaState(
      count=_core.count_zero(),
      rate_gains=jax.tree.map(lambda p: _core.full_like(p, 1.0, _gain_dtype(p)), params),
      delta_bar=jax.tree.map(
        lambda p: _core.zeros_like(p, _core.state_dtype(p, accumulator_dtype)), params
      ),
      hyperparams_used=_core.record_init(params, kappa, phi, theta, max_gain),
    )

  def update_fn(updates, state, params=None):
    del params
    consts = _core.hypers_at(state.count, kappa, phi, theta, max_gain)

    def leaf(u, rate, trace):
      ct = _core.compute_dtype(u.dtype, rate.dtype, trace.dtype)
      return _dbd_leaf(consts(ct), u, rate, trace)

    triples = _tracing.map_leaves(leaf, updates, state.rate_gains, state.delta_bar)
    out, rates, traces = _core.unzip(triples, updates, 3)
    used = _core.record(state.hyperparams_used[0].dtype, *consts.resolved)
    return out, ScaleByDeltaBarDeltaState(_core.safe_increment(state.count), rates, traces, used)

  return optax.GradientTransformation(init_fn, update_fn)


def delta_bar_delta(
  learning_rate: optax.ScalarOrSchedule,
  kappa: optax.ScalarOrSchedule = 0.05,
  phi: optax.ScalarOrSchedule = 0.05,
  theta: optax.ScalarOrSchedule = 0.7,
  *,
  max_gain: optax.ScalarOrSchedule | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Jacobs' delta-bar-delta: gradient descent with per-weight rates (1988; lecture 6d).

  Each weight steps with its own rate :math:`\epsilon_t r_t`, where :math:`r` grows by
  :math:`\kappa` when the gradient agrees in sign with the trace :math:`\bar\delta` of past
  gradients and shrinks by the factor :math:`1-\phi` when it disagrees
  (:func:`scale_by_delta_bar_delta`):

  .. math::

    \Delta w_t = -\epsilon_t\, r_t\, g_t, \qquad
    \bar\delta_t = (1-\theta)\, g_t + \theta\, \bar\delta_{t-1}

  Measuring :math:`\kappa` in units of the global rate makes the defaults independent of the
  problem's scale; :math:`\kappa = \phi = 0.05` are the lecture's +0.05/×0.95 gains.

  Args:
    learning_rate: the global rate :math:`\epsilon \ge 0` (Jacobs' :math:`\epsilon_0`), a float or
      a schedule.
    kappa, phi, theta, max_gain, accumulator_dtype: see :func:`scale_by_delta_bar_delta`.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: a hyperparameter out of range.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.delta_bar_delta(0.1, kappa=1.0, phi=0.5, theta=0.7)
    >>> w = jnp.zeros(1); state = tx.init(w)
    >>> for g in (1.0, 1.0, -1.0, 0.5, 0.5):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   w = optax.apply_updates(w, u)
    >>> print(w.round(5))  # -0.1, -0.3, -0.2, -0.3, -0.45
    [-0.45]

  References:
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4), 1988.
  """
  _core.check_range("learning_rate", learning_rate, 0.0, None)
  return optax.chain(
    scale_by_delta_bar_delta(
      kappa, phi, theta, max_gain=max_gain, accumulator_dtype=accumulator_dtype
    ),
    _core.scale_by_learning_rate(learning_rate),
  )
