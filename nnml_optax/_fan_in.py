"""A learning rate scaled by fan-in (lecture 6b).

"If a hidden unit has a big fan-in, small changes on many of its incoming weights can cause the
learning to overshoot": initialise incoming weights in proportion to 1/sqrt(fan-in), and "we can
also scale the learning rate the same way" (the slide's "proportional to
sqrt(fan-in)" means 1/sqrt(fan-in)).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import optax

from . import _core, _tracing


def _kernel_fan_in(shape: tuple[int, ...]) -> int:
  """Fan-in in Flax's kernel layout: all axes but the last (``(in, out)`` for ``Dense``,
  ``(*window, in, out)`` for ``Conv``); 1 for biases, scales and scalars (``ndim <= 1``)."""
  if len(shape) < 2:
    return 1
  return math.prod(shape[:-1])


class ScaleByFanInState(NamedTuple):
  """State of :func:`scale_by_fan_in`.

  Attributes:
    count: number of updates so far (int32), the step at which a ``power`` schedule is read.
    hyperparams_used: ``(power,)`` as last used (see :func:`nnml_optax.hyperparams`).
  """

  count: Any
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("power",)


def scale_by_fan_in(
  power: optax.ScalarOrSchedule = 0.5,
  *,
  fan_in_fn: Callable[[tuple[int, ...]], int] | None = None,
) -> optax.GradientTransformation:
  r"""Scales each parameter's update by its fan-in to the power :math:`-p`.

  .. math::

    \text{out} = \text{fan\_in}^{-p}\, u, \qquad
    \text{fan\_in}(\text{shape}) = \begin{cases}
      \prod_{i < n-1} \text{shape}_i & n = \text{ndim} \ge 2 \\ 1 & n \le 1 \end{cases}

  The fan-in is read from each leaf's shape in Flax's kernel layout (inputs first, outputs last):
  a ``nnx.Linear``/``nn.Dense`` kernel of shape ``(in, out)`` has fan-in ``in``; a ``Conv`` kernel
  ``(kh, kw, in, out)`` has ``kh * kw * in`` (``in / groups`` per output with feature groups, which
  the kernel shape already stores); biases and scalars get 1 (unscaled). Other layouts (PyTorch's
  ``(out, in, kh, kw)``, Equinox's ``(out, in)``) need ``fan_in_fn``; embeddings ``(vocab, dim)``
  are not fan-in weights: leave them out with ``optax.masked``. The scale is a per-leaf constant,
  so the transform can sit anywhere in a chain of linear transforms (before or after momentum).

  Args:
    power: :math:`p \ge 0`; 0.5 (the lecture's 1/sqrt(fan-in)) by default, 1 for 1/fan-in
      (float or schedule of the step count).
    fan_in_fn: ``shape -> fan-in`` for other layouts; ``None`` uses the kernel layout above.

  Returns:
    An ``optax.GradientTransformation``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> tx = optax.chain(nnml_optax.scale_by_fan_in(), optax.scale_by_learning_rate(0.1))
    >>> params = {"kernel": jnp.zeros((3, 3, 16, 8)), "bias": jnp.zeros(8)}  # Conv 3x3, 16 -> 8
    >>> updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params))
    >>> print(updates["kernel"][0, 0, 0, 0], updates["bias"][0])  # -0.1 / sqrt(144), -0.1
    -0.008333334 -0.1

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6b, 2012.
    LeCun, Bottou, Orr & Müller, "Efficient BackProp", 1998 (§4.7: learning rates proportional
    to 1/sqrt(fan-in)).
  """
  _core.check_range("power", power, 0.0, None)
  if fan_in_fn is not None and not callable(fan_in_fn):
    raise TypeError(f"fan_in_fn must be None or a callable shape -> int; got {fan_in_fn!r}")
  fan_in_of = _kernel_fan_in if fan_in_fn is None else fan_in_fn

  def init_fn(params):
    return ScaleByFanInState(_core.count_zero(), _core.record_init(params, power))

  def update_fn(updates, state, params=None):
    del params
    p = _core.resolve(power, state.count)

    def leaf(u):
      fan_in = fan_in_of(tuple(u.shape))
      if isinstance(fan_in, bool) or not isinstance(fan_in, numbers.Integral) or fan_in < 0:
        raise ValueError(f"fan_in_fn{tuple(u.shape)} must be an int >= 0; got {fan_in!r}")
      fan_in = int(fan_in)
      ct = _core.real_dtype(_core.compute_dtype(u.dtype))
      factor = _core.hyper(max(fan_in, 1), ct) ** -_core.hyper(p, ct)
      return (u.astype(_core.compute_dtype(u.dtype)) * factor).astype(u.dtype)

    used = _core.record(state.hyperparams_used[0].dtype, p)
    return _tracing.map_leaves(leaf, updates), ScaleByFanInState(
      _core.safe_increment(state.count), used
    )

  return optax.GradientTransformation(init_fn, update_fn)
