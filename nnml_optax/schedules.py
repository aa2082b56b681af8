"""Momentum schedules: the lecture's ramp (6c) and Sutskever et al.'s μ_t (2013, Eq. 5).

Both return ordinary optax schedules (callables of the int32 step count) that any ``momentum=``
argument of nnml_optax accepts directly; learning-rate schedules are optax's own
(``optax.linear_schedule``, ``optax.exponential_decay``, ``optax.cosine_decay_schedule``...): "turn the
learning rate down towards the end" (lecture 6a) is, for example::

    lr = optax.linear_schedule(0.1, 0.01, transition_steps=1000, transition_begin=9000)
"""

from __future__ import annotations

import jax.numpy as jnp
import optax

from . import _core

__all__ = ["momentum_ramp", "sutskever_momentum"]


def momentum_ramp(
  init_value: float = 0.5,
  end_value: float = 0.9,
  *,
  transition_steps: int,
  transition_begin: int = 0,
) -> optax.Schedule:
  r"""The lecture's momentum ramp: start small, then raise smoothly to the final value (6c).

  .. math::

    \mu_t = \mu_0 + (\mu_1 - \mu_0) \cdot
      \mathrm{clip}\!\left(\frac{t - t_b}{T}, 0, 1\right)

  "Early in learning the gradients can be very large, so start with a small momentum (0.5); once the
  large gradients have disappeared and the weights are stuck in a ravine, raise it smoothly to its
  final value (0.9 or even 0.99)." A thin wrapper over ``optax.linear_schedule`` that validates its
  arguments as momenta.

  Args:
    init_value: momentum before ``transition_begin``, in [0, 1).
    end_value: momentum after the ramp, in [0, 1).
    transition_steps: length :math:`T \ge 1` of the ramp, in steps.
    transition_begin: step :math:`t_b \ge 0` at which the ramp starts.

  Returns:
    A schedule ``count -> momentum`` (float32).

  Examples:
    >>> from nnml_optax.schedules import momentum_ramp
    >>> mu = momentum_ramp(0.5, 0.9, transition_steps=100, transition_begin=50)
    >>> [round(float(mu(t)), 4) for t in (0, 50, 100, 150, 1000)]
    [0.5, 0.5, 0.7, 0.9, 0.9]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6c, 2012.
  """
  _core.check_range("init_value", init_value, 0.0, 1.0, hi_open=True, schedule=False)
  _core.check_range("end_value", end_value, 0.0, 1.0, hi_open=True, schedule=False)
  _core.check_int("transition_steps", transition_steps, 1)
  _core.check_int("transition_begin", transition_begin, 0)
  inner = optax.linear_schedule(
    init_value=float(init_value),
    end_value=float(end_value),
    transition_steps=int(transition_steps),
    transition_begin=int(transition_begin),
  )
  return lambda count: jnp.asarray(inner(count), jnp.float32)


def sutskever_momentum(
  mu_max: float = 0.99,
  period: int = 250,
  *,
  total_steps: int | None = None,
  final_momentum: float = 0.9,
  final_steps: int = 1000,
) -> optax.Schedule:
  r"""Sutskever et al.'s momentum schedule (ICML 2013, Eq. 5), with its optional final phase.

  .. math::

    \mu_t = \min\!\left(1 - 2^{-1-\log_2(\lfloor t/P \rfloor + 1)},\ \mu_{\max}\right)
          = \min\!\left(1 - \frac{1}{2(\lfloor t/P \rfloor + 1)},\ \mu_{\max}\right)

  with :math:`P = 250` in the paper and :math:`t` counted from 0 at the first update:
  0.5 for :math:`t < 250`, 0.75, 0.8333, 0.875, then 0.9 from :math:`t = 1000`, 0.99 from 12250, ...
  It blends Nesterov's :math:`1 - 3/(t+5)` for non-strongly-convex problems with a constant
  momentum for strongly convex ones. When ``total_steps`` is given, the last ``final_steps``
  updates use :math:`\min(\mu_t, \mu_{final})` -- the paper lowers the momentum to 0.9 for the last
  1000 updates (left at 0 when it was 0), which it reports as markedly lowering the final error
  (Table 2); the learning rate is not changed.

  Args:
    mu_max: the cap :math:`\mu_{\max} \in [0, 1)`; the paper tries 0.9, 0.99, 0.995 and 0.999.
    period: :math:`P \ge 1`, steps between increases.
    total_steps: total number of updates of the run; enables the final phase.
    final_momentum: momentum of the final phase, in [0, 1).
    final_steps: length of the final phase, ``0 <= final_steps <= total_steps``.

  Returns:
    A schedule ``count -> momentum`` (float32).

  Examples:
    >>> from nnml_optax.schedules import sutskever_momentum
    >>> mu = sutskever_momentum(0.999)
    >>> [round(float(mu(t)), 4) for t in (0, 249, 250, 500, 1000, 2250, 12250)]
    [0.5, 0.5, 0.75, 0.8333, 0.9, 0.95, 0.99]
    >>> mu = sutskever_momentum(0.99, total_steps=20000, final_steps=1000)
    >>> [round(float(mu(t)), 4) for t in (18999, 19000, 19999)]
    [0.99, 0.9, 0.9]

  References:
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in deep
    learning", ICML 2013, Eq. 5 and §3.
  """
  _core.check_range("mu_max", mu_max, 0.0, 1.0, hi_open=True, schedule=False)
  _core.check_int("period", period, 1)
  _core.check_range("final_momentum", final_momentum, 0.0, 1.0, hi_open=True, schedule=False)
  _core.check_int("final_steps", final_steps, 0)
  if total_steps is not None:
    _core.check_int("total_steps", total_steps, 1)
    if total_steps < final_steps:
      raise ValueError(
        f"total_steps must be >= final_steps (= {final_steps}); got total_steps={total_steps}"
      )
  mu_max_f, final_f = float(mu_max), float(final_momentum)
  period_i = int(period)
  final_begin = None if total_steps is None else int(total_steps) - int(final_steps)

  def schedule(count):
    t = jnp.asarray(count, jnp.int32)
    k = (t // period_i + 1).astype(jnp.float32)
    mu = jnp.minimum(1.0 - 1.0 / (2.0 * k), jnp.float32(mu_max_f))
    if final_begin is not None:
      mu = jnp.where(t >= final_begin, jnp.minimum(mu, jnp.float32(final_f)), mu)
    return mu.astype(jnp.float32)

  return schedule
