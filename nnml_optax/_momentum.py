"""Classical and Nesterov momentum (lecture 6c; Sutskever, Martens, Dahl & Hinton 2013).

The lecture writes momentum with the learning rate inside the velocity::

    v(t) = α·v(t−1) − ε·g(t),        w(t) = w(t−1) + v(t)

and Nesterov's variant ("jump first, then correct") in the reformulated look-ahead coordinates that
torch and optax also use (Sutskever et al. 2013, §2.1): with Θ = θ + μ·v the iterate is the look-ahead point and::

    v(t) = μ·v(t−1) − ε·g(Θ),        Θ ← Θ + μ·v(t) − ε·g(Θ)
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from . import _core, _tracing


class ScaleByMomentumState(NamedTuple):
  """State of :func:`scale_by_momentum`.

  Attributes:
    count: number of updates so far (int32), the step at which a momentum schedule is read.
    velocity: the accumulated (unsigned) direction, one array per parameter.
    hyperparams_used: ``(momentum,)`` as last used (see :func:`nnml_optax.hyperparams`).
  """

  count: jax.Array
  velocity: optax.Updates
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("momentum",)


def scale_by_momentum(
  momentum: optax.ScalarOrSchedule = 0.9,
  *,
  nesterov: bool = False,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Accumulates a velocity: classical (heavy-ball) or Nesterov momentum.

  With :math:`\mu_t` the momentum at step :math:`t` (counted from 0) and :math:`u_t` the incoming
  updates,

  .. math::

    b_t = \mu_t\, b_{t-1} + u_t, \qquad
    \text{out}_t = \begin{cases} u_t + \mu_t\, b_t & \text{nesterov} \\ b_t & \text{otherwise}
    \end{cases}

  with :math:`b_0 = 0`. Fed the (negated, learning-rate-scaled) gradient :math:`u_t = -\epsilon g_t`,
  :math:`b_t` is the lecture's velocity :math:`v(t) = \alpha v(t-1) - \epsilon g(t)` and the
  Nesterov output is Sutskever et al.'s NAG step in look-ahead coordinates (their §2.1).
  The direction is unsigned, as every ``scale_by_*`` in optax: it returns a multiple of what it is
  fed. This is the same rule as ``optax.trace``; unlike ``optax.trace`` the momentum may be a
  schedule (such as :func:`nnml_optax.schedules.sutskever_momentum`) without
  ``optax.inject_hyperparams``, and the arithmetic is done in at least float32 so that a
  bfloat16 velocity does not round :math:`\mu = 0.999` to 1.

  Args:
    momentum: :math:`\mu \in [0, 1)`, a float or a schedule of the step count.
    nesterov: use Nesterov's look-ahead form.
    accumulator_dtype: dtype of the velocity; ``None`` uses each parameter's dtype. With
      bfloat16 parameters (as in optax and torch) the velocity stops growing early: after 1,000
      constant gradients at momentum 0.99 the step is 19 % too small; ``jnp.float32`` fixes
      it (docs/porting.md).

  Returns:
    An ``optax.GradientTransformation``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = optax.chain(nnml_optax.scale_by_momentum(0.9), optax.scale_by_learning_rate(0.1))
    >>> params = jnp.array([1.0]); state = tx.init(params)
    >>> for _ in range(3):
    ...   updates, state = tx.update(jnp.array([1.0]), state)  # a tilted plane, g = 1
    ...   params = optax.apply_updates(params, updates)
    >>> print(params.round(4))  # 1 - 0.1 - 0.19 - 0.271
    [0.439]

  References:
    Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
    Nesterov, "A method for solving a convex programming problem with convergence rate O(1/k^2)", 1983.
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013.
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6c, 2012.
  """
  _core.check_range("momentum", momentum, 0.0, 1.0, hi_open=True)
  _core.check_bool("nesterov", nesterov)
  _core.check_dtype("accumulator_dtype", accumulator_dtype)

  def init_fn(params):
    return ScaleByMomentumState(
      count=_core.count_zero(),
      velocity=jax.tree.map(
        lambda p: _core.zeros_like(p, _core.state_dtype(p, accumulator_dtype)), params
      ),
      hyperparams_used=_core.record_init(params, momentum),
    )

  def update_fn(updates, state, params=None):
    del params
    mu = _core.resolve(momentum, state.count)

    def leaf(u, b):
      ct = _core.compute_dtype(u.dtype, b.dtype)
      uc, m = u.astype(ct), _core.hyper(mu, ct)
      b_new = m * b.astype(ct) + uc
      out = uc + m * b_new if nesterov else b_new
      return out.astype(u.dtype), b_new.astype(b.dtype)

    pairs = _tracing.map_leaves(leaf, updates, state.velocity)
    out, velocity = _core.unzip(pairs, updates, 2)
    used = _core.record(state.hyperparams_used[0].dtype, mu)
    return out, ScaleByMomentumState(_core.safe_increment(state.count), velocity, used)

  return optax.GradientTransformation(init_fn, update_fn)


def _check_learning_rate(learning_rate: optax.ScalarOrSchedule) -> None:
  _core.check_range("learning_rate", learning_rate, 0.0, None)


def sgd(
  learning_rate: optax.ScalarOrSchedule,
  momentum: optax.ScalarOrSchedule | None = None,
  nesterov: bool = False,
  accumulator_dtype: Any | None = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent, :math:`\Delta w = -\epsilon g` (lecture 6a), optionally with momentum.

  ``optax.sgd``'s signature and numbers: with ``momentum`` it is
  ``optax.chain(scale_by_momentum(momentum, nesterov=...), optax.scale_by_learning_rate(lr))``,
  :math:`b_t = \mu b_{t-1} + g_t,\ \Delta w_t = -\epsilon_t b_t` (torch's and optax's form: the
  current rate multiplies the whole buffer). The lecture's form, the rate inside the velocity, is
  :func:`momentum`; the two differ only under a learning-rate schedule (see docs/porting.md).

  Args:
    learning_rate: :math:`\epsilon \ge 0`, a float or a schedule of the step count.
    momentum, nesterov, accumulator_dtype: ``None`` (no buffer) or as in
      :func:`scale_by_momentum`.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: ``learning_rate`` or ``momentum`` out of range, or ``nesterov`` without momentum.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.sgd(0.1)
    >>> params = jnp.array([1.0]); state = tx.init(params)
    >>> updates, state = tx.update(2.0 * params, state)  # gradient of w**2
    >>> print(optax.apply_updates(params, updates))
    [0.8]

  References:
    Robbins & Monro, "A stochastic approximation method", 1951.
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6a, 2012.
  """
  _check_learning_rate(learning_rate)
  _core.check_bool("nesterov", nesterov)
  lr = _core.scale_by_learning_rate(learning_rate)
  if momentum is None:
    if nesterov:
      raise ValueError("nesterov=True needs momentum (a float in [0, 1) or a schedule); got None")
    _core.check_dtype("accumulator_dtype", accumulator_dtype)
    return optax.chain(lr)
  mom = scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype)
  return optax.chain(mom, lr)


def momentum(
  learning_rate: optax.ScalarOrSchedule,
  momentum: optax.ScalarOrSchedule = 0.9,
  *,
  nesterov: bool = False,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Gradient descent with classical (or Nesterov) momentum, the lecture's form (6c).

  .. math::

    v_t = \mu_t v_{t-1} - \epsilon_t g_t, \qquad
    \Delta w_t = \begin{cases} \mu_t v_t - \epsilon_t g_t & \text{nesterov} \\ v_t & \text{otherwise}
    \end{cases}

  The learning rate sits *inside* the velocity, as on the slide (6c). For a constant
  :math:`\epsilon` this equals ``optax.sgd(lr, momentum)`` and ``torch.optim.SGD``. With a
  scheduled :math:`\epsilon` it differs from both: they accumulate raw gradients and multiply the
  whole buffer by the current rate, so lowering the rate also shrinks the velocity gathered at the
  old rate at once; here each gradient keeps the rate it was taken with and the velocity decays
  smoothly. Nesterov returns the look-ahead iterate :math:`\Theta = \theta + \mu v`
  (torch/optax convention).

  Args:
    learning_rate: :math:`\epsilon \ge 0`, a float or a schedule.
    momentum: :math:`\mu \in [0, 1)`, a float or a schedule (e.g.
      :func:`nnml_optax.schedules.sutskever_momentum`); schedules are read at the step count,
      starting at 0.
    nesterov: Nesterov's accelerated gradient instead of classical momentum.
    accumulator_dtype: dtype of the velocity (``None``: the parameter dtype; with bfloat16
      parameters the step is 19 % too small after 1,000 constant gradients at momentum 0.99:
      pass ``jnp.float32``).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: jnp.sum(w ** 2)                    # f(w) = w^2, gradient 2w
    >>> tx = nnml_optax.momentum(0.1, 0.9)
    >>> w = jnp.array([1.0]); state = tx.init(w)
    >>> for _ in range(2):
    ...   updates, state = tx.update(jax.grad(f)(w), state)
    ...   w = optax.apply_updates(w, updates)
    >>> print(w.round(4))  # 0.8, then 0.46
    [0.46]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6c, 2012.
    Sutskever, Martens, Dahl & Hinton, ICML 2013, Eq. 1-4.
  """
  _check_learning_rate(learning_rate)
  return optax.chain(
    _core.scale_by_learning_rate(learning_rate),
    scale_by_momentum(momentum, nesterov=nesterov, accumulator_dtype=accumulator_dtype),
  )


def nesterov(
  learning_rate: optax.ScalarOrSchedule,
  momentum: optax.ScalarOrSchedule = 0.9,
  *,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""Nesterov's accelerated gradient (lecture 6c, "a better type of momentum"; Sutskever 2013).

  ``momentum(learning_rate, momentum, nesterov=True)``: jump along the accumulated velocity, measure
  the gradient where you land, correct. In look-ahead coordinates :math:`\Theta = \theta + \mu v`
  (what is stored and returned, as in torch/optax):

  .. math::

    v_t = \mu_t v_{t-1} - \epsilon_t g(\Theta_{t-1}), \qquad
    \Theta_t = \Theta_{t-1} + \mu_t v_t - \epsilon_t g(\Theta_{t-1})

  Args:
    learning_rate: :math:`\epsilon \ge 0`, a float or a schedule.
    momentum: :math:`\mu \in [0, 1)`, a float or a schedule such as
      ``nnml_optax.schedules.sutskever_momentum(0.99)``.
    accumulator_dtype: dtype of the velocity (``None``: the parameter dtype).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: jnp.sum(w ** 2)
    >>> tx = nnml_optax.nesterov(0.1, 0.9)
    >>> w = jnp.array([1.0]); state = tx.init(w)
    >>> for _ in range(2):
    ...   updates, state = tx.update(jax.grad(f)(w), state)
    ...   w = optax.apply_updates(w, updates)
    >>> print(w.round(4))  # look-ahead points: 0.62, then 0.2224
    [0.2224]

  References:
    Nesterov, 1983. Sutskever, Martens, Dahl & Hinton, ICML 2013, §2.1.
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6c, 2012.
  """
  return momentum_alias(learning_rate, momentum, nesterov=True, accumulator_dtype=accumulator_dtype)


momentum_alias = momentum
