"""rmsprop and its further developments (lecture 6e; Tieleman & Hinton 2012).

The slide's rule keeps a running average of the squared gradient per weight and divides the
gradient by its root (SPEC §1.8)::

    MeanSquare(w, t) = 0.9·MeanSquare(w, t−1) + 0.1·g(t)²
    Δw(t)            = −ε · g(t) / sqrt(MeanSquare(w, t))

Its further developments (slide 6e-05, SPEC §1.9): with standard momentum, and with Nesterov
momentum where the RMS divides only the *correction*, not the jump. Per-connection gains compose
as ``optax.chain(scale_by_rms(), <gains>, optax.scale_by_learning_rate(lr))``.

Named conventions reproduce ``torch.optim.RMSprop``, Keras 3 ``RMSprop`` and TF1's
``RMSPropOptimizer`` exactly (SPEC §6.1, §6.4, §6.8; TV-1, TV-2).
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from . import _core
from ._core import ScalarOrSchedule

CONVENTIONS = (None, "torch", "keras", "tf1")

# convention -> (eps_in_sqrt, initial_scale, learning rate inside the momentum buffer)
_PRESETS: dict[str | None, tuple[bool, float, bool]] = {
  None: (True, 0.0, True),  # the lecture, as optax writes it
  "torch": (False, 0.0, False),
  "keras": (True, 0.0, True),
  "tf1": (True, 1.0, True),
}


class ScaleByRmsState(NamedTuple):
  """State of :func:`scale_by_rms` (and of :func:`rmsprop` without momentum or centering).

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    mean_square: running average of :math:`|g|^2`, one real array per parameter.
  """

  count: jax.Array
  mean_square: Any


class ScaleByCenteredRmsState(NamedTuple):
  """State of :func:`scale_by_rms` with ``centered=True``.

  Attributes:
    count: number of updates so far (int32).
    variance: running variance :math:`n_t - |m_t|^2` of the gradient (real), kept directly rather
      than as a mean square minus a squared mean (see :func:`scale_by_rms`).
    mean_grad: running average :math:`m_t` of :math:`g`.
  """

  count: jax.Array
  variance: Any
  mean_grad: Any


class RmspropMomentumState(NamedTuple):
  """State of :func:`rmsprop` with ``momentum`` set.

  Attributes:
    count: number of updates so far (int32).
    mean_square: running average of :math:`|g|^2` (real).
    momentum_buffer: the accumulated (signed) step, or, with ``convention="torch"``, the
      accumulated RMS-scaled gradient before the learning rate.
  """

  count: jax.Array
  mean_square: Any
  momentum_buffer: Any


class CenteredRmspropMomentumState(NamedTuple):
  """State of :func:`rmsprop` with ``momentum`` set and ``centered=True``.

  Attributes:
    count: number of updates so far (int32).
    variance: running variance of the gradient (real), as in :class:`ScaleByCenteredRmsState`.
    mean_grad: running average of :math:`g`.
    momentum_buffer: as in :class:`RmspropMomentumState`.
  """

  count: jax.Array
  variance: Any
  mean_grad: Any
  momentum_buffer: Any


def _abs_sq(x: jax.Array) -> jax.Array:
  """:math:`|x|^2`, real for complex ``x``."""
  if jnp.iscomplexobj(x):
    return jnp.real(x) ** 2 + jnp.imag(x) ** 2
  return x * x


@functools.cache
def _rms_rule(
  centered, eps_in_sqrt, signed, use_momentum, lr_inside, nesterov, eps_normal=False
) -> Callable:
  """The per-leaf rule for one combination of flags, shared by every transform that has them.

  Traced once per leaf signature rather than once per leaf (``_core.trace_once``) and, outside
  ``jit``, compiled once for all steps and instances. The scalars are arguments: an array the rule
  closed over would become a run-time input of the compiled step instead of a constant.

  ``eps_normal``: ``eps`` is a plain number (not a schedule, not an injected array) at least
  float32's smallest normal number, so positive in every compute dtype (float32 or float64), even
  where subnormals are flushed to zero. The denominator is then positive and the 0/0 guard is left
  out: the same numbers, four HLO instructions fewer per use (compile time is about proportional
  to them).
  """

  @_core.trace_once
  def leaf(consts, g, ms, mg=None, buf=None):
    ct = _core.compute_dtype(
      g.dtype,
      ms.dtype,
      *([] if mg is None else [mg.dtype]),
      *([] if buf is None else [buf.dtype]),
    )
    rt = _core.real_dtype(ct)
    gc = g.astype(ct)
    dc, omdc, ec, nlrc, muc, big = consts  # nlrc = −learning rate
    if centered:
      # n − |m|² updated directly: n_t − |m_t|² = ρ(n_{t−1} − |m_{t−1}|²) + ρ(1−ρ)|g − m_{t−1}|²
      # (an identity), so no cancellation and never negative.
      mgc = mg.astype(ct)
      var = _core.clip(dc * (ms.astype(rt) + omdc * _abs_sq(gc - mgc)), hi=big)
      mg_new = omdc * gc + dc * mgc
    else:
      # MeanSquare = decay·MeanSquare + (1−decay)·|g|²
      var = _core.clip(omdc * _abs_sq(gc) + dc * ms.astype(rt), hi=big)
      mg_new = None
    # The new statistic is a state output anyway: materialise it once rather than let XLA:CPU
    # (no sibling multi-output fusion) recompute it inside every other output's loop.
    var = _core.materialize(var)

    # var >= 0, so var + eps >= eps and sqrt(var) + eps >= eps (rounding is monotonic): with a
    # positive eps the denominator is positive and needs no guard (a NaN statistic stays NaN).
    guarded = not eps_normal

    def direction(var):  # g / RMS; 0/0 (g = 0, eps = 0) is 0
      # lax.select, not jnp.where, which traces a nested jit for every leaf.
      if eps_in_sqrt:
        arg = var + ec
        inv = lax.rsqrt(arg)
      else:
        arg = jnp.sqrt(var) + ec
        inv = 1 / arg
      if guarded:
        inv = lax.select(arg > 0, inv, lax.full_like(arg, 0))
      return inv * gc

    s = direction(var)
    buf_new = None
    if not signed:
      out = s
    elif not use_momentum:
      out = nlrc * s
    else:
      b = buf.astype(ct)
      if lr_inside:  # v = μ·v − ε·s (the lecture, optax, Keras, TF1)
        u = nlrc * s
        buf_new = muc * b + u
        if nesterov:
          # Δw = μ·v − ε·s needs s in the buffer's loop and in the update's. Shared, XLA
          # keeps its rsqrt in a full-size temporary (optax does too: 64 MiB at 16.8M
          # parameters, about 2x slower); a second barrier makes the update's loop
          # recompute it from the new statistic instead, identically.
          out = nlrc * direction(_core.materialize(var)) + muc * buf_new
        else:
          out = buf_new
      else:  # torch: b = μ·b + s;  Δθ = −ε·b
        buf_new = muc * b + s
        out = nlrc * buf_new
      buf_new = buf_new.astype(buf.dtype)
    # |g|/RMS <= 1/sqrt(1 - decay) (the new |g|^2 is part of the mean square), so the step and
    # the buffer stay finite without a clip for any finite learning rate and momentum < 1.
    out = out.astype(g.dtype)
    return (
      out,
      var.astype(ms.dtype),
      None if mg_new is None else mg_new.astype(mg.dtype),
      buf_new,
    )

  return leaf


def _rms_transform(
  decay: ScalarOrSchedule,
  eps: ScalarOrSchedule,
  *,
  eps_in_sqrt: bool,
  centered: bool,
  initial_scale: Any,
  accumulator_dtype: Any,
  learning_rate: ScalarOrSchedule | None = None,
  momentum: ScalarOrSchedule | None = None,
  nesterov: bool = False,
  lr_inside: bool = True,
) -> optax.GradientTransformation:
  """The one fused rmsprop kernel behind :func:`scale_by_rms` and :func:`rmsprop`.

  ``learning_rate is None``: the unsigned direction ``g / RMS`` (``scale_by_rms``). Otherwise the
  signed step, the learning rate inside (``lr_inside``) or outside the momentum buffer.
  """
  use_momentum = momentum is not None
  signed = learning_rate is not None
  sq_name = "variance" if centered else "mean_square"

  def init_fn(params):
    def ms_dtype(p):
      return _core.real_dtype(_core.state_dtype(p, accumulator_dtype))

    fields = {
      "count": _core.count_zero(),
      sq_name: jax.tree.map(lambda p: _core.full_like(p, initial_scale, ms_dtype(p)), params),
    }
    if centered:
      fields["mean_grad"] = jax.tree.map(
        lambda p: _core.zeros_like(p, _core.state_dtype(p, accumulator_dtype)), params
      )
    if use_momentum:
      fields["momentum_buffer"] = jax.tree.map(
        lambda p: _core.zeros_like(p, _core.state_dtype(p, accumulator_dtype)), params
      )
    return _state_class(centered, use_momentum)(**fields)

  eps_normal = isinstance(eps, numbers.Real) and eps >= np.finfo(np.float32).tiny
  leaf = _rms_rule(centered, eps_in_sqrt, signed, use_momentum, lr_inside, nesterov, eps_normal)

  def update_fn(updates, state, params=None):
    del params
    d = _core.resolve(decay, state.count)
    omd = 1 - d  # exact in float64 when ``decay`` is a Python number (as optax computes it)
    e = _core.resolve(eps, state.count)
    lr = _core.resolve(learning_rate, state.count) if signed else None
    mu = _core.resolve(momentum, state.count) if use_momentum else None

    # Scalars per (compute, storage) dtype pair rather than per leaf: converting them for each of
    # 1000 leaves took a sixth of the tracing time.
    @functools.cache
    def scalars(rt, sd):
      return (
        _core.hyper(d, rt),
        _core.hyper(omd, rt),
        _core.hyper(e, rt),
        None if lr is None else -_core.hyper(lr, rt),
        None if mu is None else _core.hyper(mu, rt),
        # Both statistics saturate at the storage dtype's max instead of overflowing to inf
        # (which would freeze the weight at a zero step forever).
        jnp.asarray(jnp.finfo(sd).max, rt),
      )

    def fn(g, ms, *rest):  # rest: (mean_grad if centered) + (buffer if momentum)
      ct = _core.compute_dtype(g.dtype, ms.dtype, *(x.dtype for x in rest))
      mg = rest[0] if centered else None
      buf = rest[-1] if use_momentum else None
      return leaf(scalars(_core.real_dtype(ct), ms.dtype), g, ms, mg, buf)

    trees = [updates, getattr(state, sq_name)]
    if centered:
      trees.append(state.mean_grad)
    if use_momentum:
      trees.append(state.momentum_buffer)
    out, second, mean_grad, buffer = _core.unzip(jax.tree.map(fn, *trees), updates, 4)
    fields = {"count": _core.safe_increment(state.count), sq_name: second}
    if centered:
      # The variance's loop reads the old mean gradient, which the mean gradient's loop
      # overwrites in place; nothing else orders the two, so XLA:CPU would copy the old mean
      # gradient into a full-size temporary every step (about 2x slower). Ordering the mean
      # gradient after the variance costs nothing at run time.
      leaves, treedef = jax.tree.flatten(mean_grad)
      fields["mean_grad"] = treedef.unflatten(
        _core.after_all(leaves, treedef.flatten_up_to(second))
      )
    if use_momentum:
      fields["momentum_buffer"] = buffer
    return out, _state_class(centered, use_momentum)(**fields)

  return optax.GradientTransformation(init_fn, update_fn)


def _state_class(centered: bool, use_momentum: bool) -> type:
  if use_momentum:
    return CenteredRmspropMomentumState if centered else RmspropMomentumState
  return ScaleByCenteredRmsState if centered else ScaleByRmsState


def _check_common(decay, eps, centered, initial_scale, accumulator_dtype) -> None:
  _core.check_range("decay", decay, 0.0, 1.0, hi_open=True)
  _core.check_range("eps", eps, 0.0, None)
  _core.check_bool("centered", centered)
  _core.check_range("initial_scale", initial_scale, 0.0, None, schedule=False)
  _core.check_dtype("accumulator_dtype", accumulator_dtype)


def scale_by_rms(
  decay: ScalarOrSchedule = 0.9,
  eps: ScalarOrSchedule = 1e-8,
  *,
  eps_in_sqrt: bool = True,
  centered: bool = False,
  initial_scale: float = 0.0,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformation:
  r"""Divides the gradient by the root of its running mean square (rmsprop's direction, 6e).

  With :math:`\rho_t` the decay and :math:`\epsilon_t` the eps at step :math:`t` (counted from 0),

  .. math::

    n_t = \rho_t\, n_{t-1} + (1-\rho_t)\, |g_t|^2, \qquad
    \sigma^2_t = \begin{cases} n_t - |m_t|^2,\; m_t = \rho_t m_{t-1} + (1-\rho_t) g_t
      & \text{centered} \\ n_t & \text{otherwise} \end{cases}

  .. math::

    \text{out}_t = \frac{g_t}{\sqrt{\sigma^2_t + \epsilon_t}} \;(\texttt{eps\_in\_sqrt})
    \quad\text{or}\quad \frac{g_t}{\sqrt{\sigma^2_t} + \epsilon_t}

  with :math:`n_0 = ` ``initial_scale`` and :math:`m_0 = 0`. The direction is unsigned (it has the
  sign of :math:`g`), as every ``scale_by_*`` in optax; chain a learning rate (or
  :func:`rmsprop`) to descend. It is bit-identical to ``optax.scale_by_rms`` in float32 and
  float64, equal up to rounding to ``optax.scale_by_stddev`` when centered (see below), and also
  takes schedules for ``decay`` and ``eps``.

  Numerical safety: the arithmetic runs in at least float32 (float64 for float64 gradients), the
  centered variance is updated directly (:math:`\sigma^2_t = \rho_t(\sigma^2_{t-1} +
  (1-\rho_t)|g_t - m_{t-1}|^2)`, an identity) so it never cancels to a negative number, a zero
  denominator gives a zero step instead of 0/0 (a zero gradient with ``eps=0``, or with ``eps=0``
  a gradient whose square underflows: :math:`|g| \lesssim 10^{-19}` in float32), and the
  statistics saturate at the largest finite value of their dtype instead of overflowing to inf
  (an overflow would otherwise freeze the weight at zero steps forever).

  Complex gradients use :math:`|g|^2`: the real and imaginary parts of a complex parameter share
  one (real) mean square, so it behaves like a pair of real weights normalised by the RMS of the
  pair's norm, and the step keeps the gradient's phase.

  Args:
    decay: :math:`\rho \in [0, 1)`, a float or a schedule (the lecture's 0.9).
    eps: :math:`\epsilon \ge 0`, a float or a schedule.
    eps_in_sqrt: add :math:`\epsilon` inside the square root (optax, Keras, TF1) or outside
      (torch).
    centered: divide by the root of the running *variance* (Graves 2013) instead of the mean
      square; doubles the state.
    initial_scale: :math:`n_0 \ge 0`, read once at ``init`` (0 in torch, Keras, optax; 1 in TF1).
    accumulator_dtype: dtype of the statistics; ``None`` uses each parameter's dtype (the mean
      square is real for complex parameters).

  Returns:
    An ``optax.GradientTransformation`` whose state is :class:`ScaleByRmsState`
    (:class:`ScaleByCenteredRmsState` when centered).

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = nnml_optax.scale_by_rms(0.9, eps=0.0)
    >>> state = tx.init(jnp.zeros(2))
    >>> u, state = tx.update(jnp.array([5.0, -0.001]), state)
    >>> print(u.round(4))  # first step: sign(g)/sqrt(1 - decay), whatever |g|
    [ 3.1623 -3.1623]

  References:
    Tieleman & Hinton, Neural Networks for Machine Learning, lecture 6e ("rmsprop"), 2012.
    Graves, "Generating sequences with recurrent neural networks", arXiv:1308.0850, 2013
    (centered form).
  """
  _check_common(decay, eps, centered, initial_scale, accumulator_dtype)
  _core.check_bool("eps_in_sqrt", eps_in_sqrt)
  return _rms_transform(
    decay,
    eps,
    eps_in_sqrt=eps_in_sqrt,
    centered=centered,
    initial_scale=initial_scale,
    accumulator_dtype=accumulator_dtype,
  )


def rmsprop(
  learning_rate: ScalarOrSchedule,
  decay: ScalarOrSchedule = 0.9,
  eps: ScalarOrSchedule = 1e-8,
  *,
  eps_in_sqrt: bool | None = None,
  centered: bool = False,
  initial_scale: float | None = None,
  momentum: ScalarOrSchedule | None = None,
  nesterov: bool = False,
  convention: str | None = None,
  accumulator_dtype: Any = None,
) -> optax.GradientTransformationExtraArgs:
  r"""rmsprop (lecture 6e), with momentum, Nesterov momentum, or a framework's exact convention.

  With :math:`s_t` the output of :func:`scale_by_rms` (:math:`g_t / \mathrm{RMS}_t`),
  :math:`\epsilon_t` the learning rate and :math:`\mu_t` the momentum:

  .. math::

    \begin{array}{ll}
    \text{no momentum:} & \Delta w_t = -\epsilon_t s_t \\
    \text{momentum (lecture, Keras, TF1):} & v_t = \mu_t v_{t-1} - \epsilon_t s_t,\;
      \Delta w_t = v_t \\
    \text{Nesterov (lecture, 6e-05):} & v_t = \mu_t v_{t-1} - \epsilon_t s_t,\;
      \Delta w_t = \mu_t v_t - \epsilon_t s_t \\
    \text{momentum, torch:} & b_t = \mu_t b_{t-1} + s_t,\; \Delta w_t = -\epsilon_t b_t
    \end{array}

  **Nesterov** follows the slide: the RMS divides only the correction :math:`-\epsilon g/RMS`,
  never the jump :math:`\mu v` along the accumulated corrections. The stored and returned iterate
  is the look-ahead point :math:`\Theta = \theta + \mu v` (as torch/optax do for Nesterov, SPEC
  §1.9, TV-4b); this equals ``optax.rmsprop(..., momentum=μ, nesterov=True)``.

  **Where the learning rate sits.** By default (and for Keras and TF1) it is applied *before* the
  momentum buffer, as in the lecture's :math:`v \leftarrow \alpha v - \epsilon g` (SPEC §0): with
  a scheduled rate each step keeps the rate it was taken with. ``convention="torch"`` accumulates
  :math:`s_t` and multiplies the buffer by the current rate. For a constant rate both are equal.

  **Conventions** (``convention=``), each reproducing that framework's RMSprop exactly given the
  same numbers (pass its default ``decay``/``eps`` yourself; this function's defaults are the
  lecture's ``decay=0.9``):

  ===========  ================================  ===========  =============  =================
  convention   denominator                       :math:`n_0`  learning rate  framework default
  ===========  ================================  ===========  =============  =================
  ``None``     :math:`\sqrt{\sigma^2+\epsilon}`  0            before buffer  (optax) 0.9, 1e-8
  ``"torch"``  :math:`\sqrt{\sigma^2}+\epsilon`  0            after buffer   0.99, 1e-8
  ``"keras"``  :math:`\sqrt{\sigma^2+\epsilon}`  0            before buffer  0.9, 1e-7
  ``"tf1"``    :math:`\sqrt{\sigma^2+\epsilon}`  1            before buffer  0.9, 1e-10
  ===========  ================================  ===========  =============  =================

  where :math:`\sigma^2` is :math:`n_t` or, when centered, :math:`n_t - m_t^2`. torch:
  ``b ← μb + g/(sqrt(v) + eps); θ ← θ − lr·b``; Keras/TF1: ``m ← μm + lr·g/sqrt(v + eps);
  θ ← θ − m``. torch's ``weight_decay=wd`` is ``optax.chain(optax.add_decayed_weights(wd),
  rmsprop(...))``. None of the three frameworks has Nesterov-rmsprop, so ``nesterov=True`` needs
  ``convention=None``.

  Args:
    learning_rate: :math:`\epsilon \ge 0`, a float or a schedule.
    decay: :math:`\rho \in [0, 1)`, a float or a schedule (the lecture's 0.9).
    eps: :math:`\ge 0`, a float or a schedule.
    eps_in_sqrt: ``None`` takes the convention's placement (inside the sqrt unless
      ``convention="torch"``); an explicit value must agree with the convention.
    centered: divide by the running standard deviation instead of the RMS.
    initial_scale: initial mean square, a number read at ``init``; ``None`` takes the
      convention's (1 for ``"tf1"``, else 0); an explicit value must agree with the convention.
    momentum: ``None`` (no buffer) or :math:`\mu \in [0, 1)`, a float or a schedule such as
      :func:`nnml_optax.schedules.sutskever_momentum`.
    nesterov: Nesterov momentum, the RMS dividing only the correction; needs ``momentum``.
    convention: ``None`` (the lecture, as optax), ``"torch"``, ``"keras"`` or ``"tf1"``.
    accumulator_dtype: dtype of the state arrays; ``None`` uses each parameter's dtype.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Raises:
    ValueError: a hyperparameter is out of range, ``nesterov=True`` without ``momentum`` or with
      a convention, an unknown ``convention``, or an ``eps_in_sqrt``/``initial_scale`` that
      contradicts it.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: jnp.sum(w ** 2)
    >>> tx = nnml_optax.rmsprop(0.01)
    >>> w = jnp.array([1.0]); state = tx.init(w)
    >>> updates, state = tx.update(jax.grad(f)(w), state)
    >>> print(optax.apply_updates(w, updates).round(4))  # 1 - 0.01/sqrt(0.1)
    [0.9684]
    >>> torch_like = nnml_optax.rmsprop(0.01, decay=0.99, momentum=0.9, convention="torch")

  References:
    Tieleman & Hinton, Neural Networks for Machine Learning, lecture 6e, 2012 (rmsprop; "further
    developments of rmsprop").
    Sutskever, Martens, Dahl & Hinton, ICML 2013 (Nesterov momentum, look-ahead form).
    Graves, arXiv:1308.0850, 2013 (centered rmsprop).
  """
  _core.check_range("learning_rate", learning_rate, 0.0, None)
  _check_common(
    decay, eps, centered, 0.0 if initial_scale is None else initial_scale, accumulator_dtype
  )
  _core.check_choice("convention", convention, CONVENTIONS)
  _core.check_bool("nesterov", nesterov)
  preset_sqrt, preset_scale, lr_inside = _PRESETS[convention]
  if eps_in_sqrt is None:
    eps_in_sqrt = preset_sqrt
  else:
    _core.check_bool("eps_in_sqrt", eps_in_sqrt)
    if convention is not None and eps_in_sqrt != preset_sqrt:
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
  if momentum is not None:
    _core.check_range("momentum", momentum, 0.0, 1.0, hi_open=True)
  if nesterov and momentum is None:
    raise ValueError("nesterov=True needs momentum (a float in [0, 1) or a schedule); got None")
  if nesterov and convention is not None:
    raise ValueError(
      f"nesterov=True is only defined for convention=None; {convention!r} has no Nesterov rmsprop"
    )
  return optax.chain(
    _rms_transform(
      decay,
      eps,
      eps_in_sqrt=eps_in_sqrt,
      centered=centered,
      initial_scale=initial_scale,
      accumulator_dtype=accumulator_dtype,
      learning_rate=learning_rate,
      momentum=momentum,
      nesterov=nesterov,
      lr_inside=lr_inside,
    )
  )
