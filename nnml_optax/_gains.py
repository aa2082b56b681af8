"""Per-connection adaptive learning rates (lecture 6d; Jacobs 1988).

Each weight gets a *local gain* that multiplies a hand-set global learning rate (SPEC §1.5, §3):

* :func:`scale_by_local_gains` is Hinton's rule: a gain grows by an additive ``δ`` while the
  gradient keeps its sign, is multiplied by ``1 − δ`` otherwise, and is clipped to
  ``[min_gain, max_gain]``;
* :func:`scale_by_local_gains_momentum` decides the gain change from the agreement of the gradient
  with the *velocity* (Jacobs 1989, the lecture's trick for gains with momentum);
* :func:`scale_by_delta_bar_delta` is Jacobs' delta-bar-delta: the agreement is with an exponential
  trace of past gradients, the increase is additive and the decrease multiplicative.

:func:`local_gains` and :func:`delta_bar_delta` are the aliases (global learning rate applied).
All states are compact: the gains are float32 (float64 for float64 parameters), the previous
gradient is kept only as its int8 sign, and the velocity or trace is one array in the parameter
dtype.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import _core
from ._core import ScalarOrSchedule

# ---------------------------------------------------------------------------------------------
# states
# ---------------------------------------------------------------------------------------------


class ScaleByLocalGainsState(NamedTuple):
  """State of :func:`scale_by_local_gains`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    gains: the per-weight gains (init 1), float32 (float64 for float64 parameters).
    last_grad_sign: the sign of the previous gradient as int8 (-1, 0, 1; init 0).
  """

  count: jax.Array
  gains: Any
  last_grad_sign: Any


class ScaleByLocalGainsMomentumState(NamedTuple):
  """State of :func:`scale_by_local_gains_momentum`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    momentum_gains: the per-weight gains (init 1), float32 (float64 for float64 parameters).
    gain_velocity: the accumulated (unsigned) direction, in the parameter dtype unless
      ``accumulator_dtype`` is given.
  """

  count: jax.Array
  momentum_gains: Any
  gain_velocity: Any


class ScaleByDeltaBarDeltaState(NamedTuple):
  """State of :func:`scale_by_delta_bar_delta`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    rate_gains: each weight's learning rate as a multiple of the global one (init 1), float32
      (float64 for float64 parameters).
    delta_bar: Jacobs' exponential trace of past gradients :math:`\\bar\\delta` (init 0), in the
      parameter dtype unless ``accumulator_dtype`` is given.
  """

  count: jax.Array
  rate_gains: Any
  delta_bar: Any


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
  new = jnp.clip(jnp.where(uc * last_sign > 0, gc + inc, gc * dec), lo, hi)  # +δ or ×(1−δ)
  return (new * uc).astype(u.dtype), new.astype(gain.dtype), _core.sign_int8(uc)


def scale_by_local_gains(
  additive_increase: ScalarOrSchedule = 0.05,
  multiplicative_decrease: ScalarOrSchedule = 0.95,
  min_gain: ScalarOrSchedule = 0.1,
  max_gain: ScalarOrSchedule = 10.0,
) -> optax.GradientTransformation:
  r"""Scales each coordinate by a local gain adapted from gradient sign agreement (lecture 6d).

  With :math:`u_t` the incoming updates and :math:`G_0 = 1`, :math:`s_0 = 0`,

  .. math::

    G_t = \mathrm{clip}\Big(\begin{cases} G_{t-1} + \delta & \text{if } u_t\, s_{t-1} > 0 \\
      (1-\delta)\, G_{t-1} & \text{otherwise} \end{cases},\; G_{\min},\; G_{\max}\Big),
    \qquad \text{out}_t = G_t\, u_t, \qquad s_t = \mathrm{sign}(u_t)

  Additive increase with multiplicative decrease makes large gains collapse quickly once the
  weight starts to oscillate; with random signs the gain hovers around 1. This is the slide's
  literal rule (SPEC §0, TV-5): anything that is not a strict sign agreement decreases the gain, so
  the first step (no previous gradient) and zero gradients multiply it by :math:`1-\delta`. The
  previous gradient is kept only as an int8 sign (5 bytes per float32 parameter in all). The
  direction is unsigned (it has the sign of :math:`u`): chain a learning rate, or use
  :func:`local_gains`. Gains work on any direction with the gradient's sign, for example rmsprop's
  (the lecture's "rmsprop with adaptive rates", 6e)::

    optax.chain(nnml_optax.scale_by_rms(), nnml_optax.scale_by_local_gains(),
                optax.scale_by_learning_rate(lr))

  Non-finite gradients: the output entry is NaN/inf (nothing is hidden), the stored sign of a NaN
  entry is 0 and the gain stays finite and within its bounds, so a NaN costs a gain at most two
  decreases and never poisons it. ``optax.apply_if_finite`` skips such steps altogether and leaves
  this state untouched.

  Args:
    additive_increase: :math:`\delta > 0`, added to a gain on a sign agreement (lecture:
      0.05); a float or a schedule.
    multiplicative_decrease: :math:`1 - \delta \in (0, 1)`, the factor applied to a gain
      otherwise (lecture: 0.95); a float or a schedule.
    min_gain: lower clip :math:`G_{\min} > 0` (lecture: 0.1 or 0.01); a float or a schedule.
    max_gain: upper clip :math:`G_{\max} \ge G_{\min}` (lecture: 10 or 100); a float or a
      schedule.

  Returns:
    An ``optax.GradientTransformation``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.scale_by_local_gains()
    >>> state = tx.init(jnp.zeros(2))
    >>> for g in ([1.0, 1.0], [1.0, -1.0], [1.0, -1.0]):
    ...   u, state = tx.update(jnp.array(g), state)
    >>> print(state.gains.round(4))  # 0.95 (first step), then +0.05 / x0.95, then +0.05
    [1.05   0.9525]

    Rmsprop with local gains on an ill-conditioned quadratic:

    >>> import jax
    >>> f = lambda w: 0.5 * jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)
    >>> tx = optax.chain(nnml_optax.scale_by_rms(), nnml_optax.scale_by_local_gains(),
    ...                  optax.scale_by_learning_rate(0.01))
    >>> w = jnp.array([1.0, 1.0]); state = tx.init(w)
    >>> for _ in range(300):
    ...   u, state = tx.update(jax.grad(f)(w), state)
    ...   w = optax.apply_updates(w, u)
    >>> bool(f(w) < 1e-3)
    True

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6d, 2012.
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4):295-307, 1988.
  """
  _check_gains(additive_increase, multiplicative_decrease, min_gain, max_gain)

  def init_fn(params):
    return ScaleByLocalGainsState(
      count=_core.count_zero(),
      gains=jax.tree.map(lambda p: _core.full_like(p, 1.0, _gain_dtype(p)), params),
      last_grad_sign=jax.tree.map(lambda p: _core.zeros_like(p, jnp.int8), params),
    )

  def update_fn(updates, state, params=None):
    del params
    consts = _core.hypers_at(
      state.count, additive_increase, multiplicative_decrease, min_gain, max_gain
    )

    def leaf(u, gain, last_sign):
      return _gains_leaf(consts(_core.compute_dtype(u.dtype, gain.dtype)), u, gain, last_sign)

    triples = jax.tree.map(leaf, updates, state.gains, state.last_grad_sign)
    out, gains, signs = _core.unzip(triples, updates, 3)
    return out, ScaleByLocalGainsState(
      count=_core.safe_increment(state.count), gains=gains, last_grad_sign=signs
    )

  return optax.GradientTransformation(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# gains with momentum (Jacobs; lecture 6d)
# ---------------------------------------------------------------------------------------------


def _gains_momentum_leaf(hps, u, gain, b):
  """Jacobs' rule for one leaf: returns ``(b_t, G_t, b_t)``, the stored velocity finite."""
  mu, inc, dec, lo, hi = hps
  ct = _core.compute_dtype(u.dtype, gain.dtype, b.dtype)
  uc, gc, bc = u.astype(ct), gain.astype(ct), b.astype(ct)
  new = jnp.clip(jnp.where(_same_sign(uc, bc), gc + inc, gc * dec), lo, hi)
  b_new = mu * bc + new * uc  # b_t = μ b_{t-1} + G_t u_t
  return b_new.astype(u.dtype), new.astype(gain.dtype), _finite_or_zero(b_new).astype(b.dtype)


def scale_by_local_gains_momentum(
  momentum: ScalarOrSchedule = 0.9,
  additive_increase: ScalarOrSchedule = 0.05,
  multiplicative_decrease: ScalarOrSchedule = 0.95,
  min_gain: ScalarOrSchedule = 0.1,
  max_gain: ScalarOrSchedule = 10.0,
  *,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Local gains decided by agreement with the velocity, then momentum (lecture 6d, Jacobs).

  With :math:`u_t` the incoming updates, :math:`G_0 = 1` and :math:`b_0 = 0`,

  .. math::

    G_t = \mathrm{clip}\Big(\begin{cases} G_{t-1} + \delta & \text{if } u_t\, b_{t-1} > 0 \\
      (1-\delta)\, G_{t-1} & \text{otherwise} \end{cases},\; G_{\min},\; G_{\max}\Big),
    \qquad b_t = \mu_t\, b_{t-1} + G_t\, u_t, \qquad \text{out}_t = b_t

  The gain grows when the new update agrees in sign with the velocity it joins. Fed the
  learning-rate-scaled negative gradient :math:`u_t = -\epsilon g_t` (as :func:`local_gains`
  does), :math:`b_t` is the lecture's velocity :math:`v(t) = \alpha v(t-1) - \epsilon G g(t)`
  and the test is SPEC §1.5's "increase iff :math:`g(t)\, v(t-1) < 0`" (TV-5); fed the gradient
  itself the test is the same up to the positive factor :math:`\epsilon`. The first step and zero
  products decrease the gain (the literal rule, SPEC §0). The state is the gains and the velocity
  (8 bytes per float32 parameter).

  Non-finite gradients: the output entry is NaN/inf (nothing is hidden); the stored velocity entry
  is reset to 0 ("no information", as the int8 sign of :func:`scale_by_local_gains`) and the gain
  stays finite and within its bounds, so one NaN does not pin the gain at ``min_gain`` forever. With
  a float32/float64 velocity, an entry that overflows from finite values (beyond the largest
  float) is reset to 0 in the same way, and its weight does not move on that step.
  ``optax.apply_if_finite`` skips such steps and leaves this state untouched.

  Args:
    momentum: :math:`\mu \in [0, 1)`, a float or a schedule.
    additive_increase: :math:`\delta > 0`, added to a gain on a sign agreement (lecture:
      0.05); a float or a schedule.
    multiplicative_decrease: :math:`1 - \delta \in (0, 1)`, the factor applied to a gain
      otherwise (lecture: 0.95); a float or a schedule.
    min_gain: lower clip :math:`G_{\min} > 0` (lecture: 0.1 or 0.01); a float or a schedule.
    max_gain: upper clip :math:`G_{\max} \ge G_{\min}` (lecture: 10 or 100); a float or a
      schedule.
    accumulator_dtype: dtype of the velocity (``None``: the parameter dtype).

  Returns:
    An ``optax.GradientTransformation``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = optax.chain(optax.scale_by_learning_rate(0.1),
    ...                  nnml_optax.scale_by_local_gains_momentum(0.9))
    >>> w = jnp.zeros(1); state = tx.init(w)
    >>> for g in (1.0, 1.0, 1.0):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   w = optax.apply_updates(w, u)
    >>> print(w.round(5))  # TV-5 (momentum): -0.095, -0.2805, -0.55245
    [-0.55245]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6d, 2012.
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4):295-307, 1988.
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

    triples = jax.tree.map(leaf, updates, state.momentum_gains, state.gain_velocity)
    out, gains, velocity = _core.unzip(triples, updates, 3)
    return out, ScaleByLocalGainsMomentumState(
      count=_core.safe_increment(state.count), momentum_gains=gains, gain_velocity=velocity
    )

  return optax.GradientTransformation(init_fn, update_fn)


def local_gains(
  learning_rate: ScalarOrSchedule,
  additive_increase: ScalarOrSchedule = 0.05,
  multiplicative_decrease: ScalarOrSchedule = 0.95,
  min_gain: ScalarOrSchedule = 0.1,
  max_gain: ScalarOrSchedule = 10.0,
  *,
  momentum: ScalarOrSchedule | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent with a separate adaptive gain per connection (lecture 6d).

  Without momentum, :math:`\Delta w_t = -\epsilon_t\, G_t\, g_t` with Hinton's gains
  (:func:`scale_by_local_gains`: +δ on a sign agreement of two consecutive gradients, ×(1−δ)
  otherwise, clipped). With ``momentum`` the gain change is decided by the velocity instead of the
  previous gradient (:func:`scale_by_local_gains_momentum`, Jacobs; SPEC §1.5):

  .. math::

    G_t \uparrow \text{ iff } g_t\, v_{t-1} < 0, \qquad
    v_t = \alpha_t v_{t-1} - \epsilon_t G_t g_t, \qquad \Delta w_t = v_t

  As in :func:`nnml_optax.momentum` the learning rate sits inside the velocity (SPEC §0). The
  lecture advises full-batch learning or big mini-batches, so that sign changes are not mostly
  sampling noise, and notes that gains only handle axis-aligned effects.

  Args:
    learning_rate: the global rate :math:`\epsilon \ge 0`, a float or a schedule.
    additive_increase: :math:`\delta > 0`, added to a gain on a sign agreement (lecture:
      0.05); a float or a schedule.
    multiplicative_decrease: :math:`1 - \delta \in (0, 1)`, the factor applied to a gain
      otherwise (lecture: 0.95); a float or a schedule.
    min_gain: lower clip :math:`G_{\min} > 0` (lecture: 0.1 or 0.01); a float or a schedule.
    max_gain: upper clip :math:`G_{\max} \ge G_{\min}` (lecture: 10 or 100); a float or a
      schedule.
    momentum: ``None`` (no momentum: consecutive-gradient rule) or :math:`\alpha \in [0, 1)`, a
      float or a schedule (velocity rule).
    accumulator_dtype: dtype of the velocity when ``momentum`` is given (``None``: the parameter
      dtype).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.local_gains(0.1)
    >>> w = jnp.zeros(1); state = tx.init(w)
    >>> for g in (1.0, 1.0, 1.0, -1.0):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   w = optax.apply_updates(w, u)
    >>> print(w.round(5))  # TV-5: -0.095, -0.195, -0.3, -0.20025
    [-0.20025]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6d, 2012.
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4):295-307, 1988.
  """
  _core.check_range("learning_rate", learning_rate, 0.0, None)
  if momentum is None:
    if accumulator_dtype is not None:
      raise ValueError("accumulator_dtype is only used with momentum; got momentum=None")
    return optax.chain(
      scale_by_local_gains(additive_increase, multiplicative_decrease, min_gain, max_gain),
      optax.scale_by_learning_rate(learning_rate),
    )
  return optax.chain(
    optax.scale_by_learning_rate(learning_rate),
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
  kappa: ScalarOrSchedule = 0.05,
  phi: ScalarOrSchedule = 0.05,
  theta: ScalarOrSchedule = 0.7,
  *,
  max_gain: ScalarOrSchedule | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Jacobs' delta-bar-delta: per-weight rates adapted by agreement with a gradient trace.

  Each weight's rate is a multiple :math:`r` of the global learning rate. With :math:`u_t` the
  incoming updates, :math:`r_0 = 1` and :math:`\bar\delta_0 = 0` (SPEC §3, ε(t+1) ordering):

  .. math::

    r_t = \begin{cases} r_{t-1} + \kappa & \bar\delta_{t-1}\, u_t > 0 \\
      (1-\phi)\, r_{t-1} & \bar\delta_{t-1}\, u_t < 0 \\
      r_{t-1} & \text{otherwise (first step, zero gradient)} \end{cases}, \qquad
    \text{out}_t = r_t\, u_t, \qquad \bar\delta_t = (1-\theta)\, u_t + \theta\, \bar\delta_{t-1}

  (then :math:`r_t \le` ``max_gain`` when given). The step uses the *updated* rate (SPEC §0,
  TV-7); Mesh-style implementations step with the old rate and then update it. Chained with
  ``optax.scale_by_learning_rate(ε₀)`` (see :func:`delta_bar_delta`) this is Jacobs' rule with
  initial rate :math:`\epsilon_0` and additive increase :math:`\epsilon_0\kappa`. The increase is
  linear and the decrease exponential, so rates shrink fast once a weight oscillates; the trace
  makes the decision less sensitive to single noisy gradients than consecutive signs. The state is
  the rates and the trace (8 bytes per float32 parameter). Meant for batch learning.

  Non-finite gradients: the output entry is NaN/inf; the stored trace entry is reset to 0 and the
  rate stays finite, so it adapts again afterwards. ``optax.apply_if_finite`` skips such steps and
  leaves this state untouched.

  Args:
    kappa: :math:`\kappa > 0`, the additive increase of a weight's rate, in units of the global
      learning rate (Jacobs' absolute :math:`\kappa` is ``learning_rate * kappa``); a float or a
      schedule.
    phi: :math:`\phi \in (0, 1)`, the fraction by which a weight's rate shrinks on a sign
      disagreement; a float or a schedule.
    theta: :math:`\theta \in [0, 1)`, the decay of the gradient trace :math:`\bar\delta`
      (Jacobs: 0.7); a float or a schedule.
    max_gain: ``None`` (no bound, as Jacobs) or an upper bound :math:`> 0` on each rate multiplier;
      a float or a schedule.
    accumulator_dtype: dtype of the trace :math:`\bar\delta` (``None``: the parameter dtype).

  Returns:
    An ``optax.GradientTransformation``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.scale_by_delta_bar_delta(kappa=1.0, phi=0.5, theta=0.7)
    >>> state = tx.init(jnp.zeros(1))
    >>> for g in (1.0, 1.0, -1.0, 0.5, 0.5):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   print(state.rate_gains)  # TV-7 rates 0.1, 0.2, 0.1, 0.2, 0.3 in units of ε₀ = 0.1
    [1.]
    [2.]
    [1.]
    [2.]
    [3.]

  References:
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4):295-307, 1988.
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6d, 2012.
  """
  _check_dbd(kappa, phi, theta, max_gain, accumulator_dtype)

  def init_fn(params):
    return ScaleByDeltaBarDeltaState(
      count=_core.count_zero(),
      rate_gains=jax.tree.map(lambda p: _core.full_like(p, 1.0, _gain_dtype(p)), params),
      delta_bar=jax.tree.map(
        lambda p: _core.zeros_like(p, _core.state_dtype(p, accumulator_dtype)), params
      ),
    )

  def update_fn(updates, state, params=None):
    del params
    consts = _core.hypers_at(state.count, kappa, phi, theta, max_gain)

    def leaf(u, rate, trace):
      ct = _core.compute_dtype(u.dtype, rate.dtype, trace.dtype)
      return _dbd_leaf(consts(ct), u, rate, trace)

    triples = jax.tree.map(leaf, updates, state.rate_gains, state.delta_bar)
    out, rates, traces = _core.unzip(triples, updates, 3)
    return out, ScaleByDeltaBarDeltaState(
      count=_core.safe_increment(state.count), rate_gains=rates, delta_bar=traces
    )

  return optax.GradientTransformation(init_fn, update_fn)


def delta_bar_delta(
  learning_rate: ScalarOrSchedule,
  kappa: ScalarOrSchedule = 0.05,
  phi: ScalarOrSchedule = 0.05,
  theta: ScalarOrSchedule = 0.7,
  *,
  max_gain: ScalarOrSchedule | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Jacobs' delta-bar-delta: gradient descent with per-weight rates (1988; lecture 6d).

  Each weight :math:`i` steps with its own rate :math:`\epsilon_t\, r_{i,t}`, where
  :math:`\epsilon_t` is ``learning_rate`` and :math:`r` (init 1) grows by :math:`\kappa` when the
  gradient agrees in sign with the trace :math:`\bar\delta` of past gradients and shrinks by the
  factor :math:`1-\phi` when it disagrees (:func:`scale_by_delta_bar_delta`):

  .. math::

    \Delta w_t = -\epsilon_t\, r_t\, g_t, \qquad
    \bar\delta_t = (1-\theta)\, g_t + \theta\, \bar\delta_{t-1}

  For a constant learning rate this is Jacobs' rule with :math:`\epsilon(0) = ` ``learning_rate``,
  additive increase ``learning_rate * kappa``, decrease :math:`\phi` and the ε(t+1) ordering
  (SPEC §3, TV-7 is ``delta_bar_delta(0.1, kappa=1.0, phi=0.5, theta=0.7)``). Measuring
  :math:`\kappa` in units of the global rate makes the defaults independent of the problem's
  scale and lets a learning-rate schedule scale every per-weight rate. Defaults:
  :math:`\theta = 0.7` (the value used by Jacobs-style implementations, SPEC §3) and
  :math:`\kappa = \phi = 0.05`, the lecture's +0.05/×0.95 gains: with random signs the rates
  then hover around the global rate.

  Args:
    learning_rate: the global rate :math:`\epsilon \ge 0` (Jacobs' :math:`\epsilon_0`), a float or
      a schedule.
    kappa: :math:`\kappa > 0`, the additive increase of a weight's rate, in units of the global
      learning rate (Jacobs' absolute :math:`\kappa` is ``learning_rate * kappa``); a float or a
      schedule.
    phi: :math:`\phi \in (0, 1)`, the fraction by which a weight's rate shrinks on a sign
      disagreement; a float or a schedule.
    theta: :math:`\theta \in [0, 1)`, the decay of the gradient trace :math:`\bar\delta`
      (Jacobs: 0.7); a float or a schedule.
    max_gain: ``None`` (no bound, as Jacobs) or an upper bound :math:`> 0` on each rate multiplier;
      a float or a schedule.
    accumulator_dtype: dtype of the trace :math:`\bar\delta` (``None``: the parameter dtype).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.delta_bar_delta(0.1, kappa=1.0, phi=0.5, theta=0.7)
    >>> w = jnp.zeros(1); state = tx.init(w)
    >>> for g in (1.0, 1.0, -1.0, 0.5, 0.5):
    ...   u, state = tx.update(jnp.array([g]), state)
    ...   w = optax.apply_updates(w, u)
    >>> print(w.round(5))  # TV-7: -0.1, -0.3, -0.2, -0.3, -0.45
    [-0.45]

  References:
    Jacobs, "Increased rates of convergence through learning rate adaptation", Neural Networks
    1(4):295-307, 1988.
  """
  _core.check_range("learning_rate", learning_rate, 0.0, None)
  return optax.chain(
    scale_by_delta_bar_delta(
      kappa, phi, theta, max_gain=max_gain, accumulator_dtype=accumulator_dtype
    ),
    optax.scale_by_learning_rate(learning_rate),
  )
