"""The Rprop family: Rprop-, Rprop+, iRprop-, iRprop+ (lecture 6e).

Rprop uses only the sign of each derivative and adapts a step size per weight (Riedmiller & Braun
1993); the "+" variants undo the last move on a sign change, the "i" variants of Igel & Hüsken
(2000, 2003) refine when. The state is compact: the step sizes and the previous sign as int8.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import _core, _tracing

Variant = Literal["rprop-", "rprop+", "irprop-", "irprop+"]
VARIANTS: tuple[Variant, ...] = ("rprop-", "rprop+", "irprop-", "irprop+")


class RpropState(NamedTuple):
  """State of :func:`scale_by_rprop`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    step_sizes: the per-weight step sizes Δ, float32 (float64 for float64 parameters; complex
      for complex parameters: one step size per real component).
    prev_sign: the sign of the stored previous derivative, int8 in {-1, 0, 1}; for a complex
      parameter both signs packed as ``sign_re + 3·sign_im``.
    prev_value: the previous loss (scalar, initially ``+inf``); read by ``"irprop+"`` only.
    hyperparams_used: ``(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size)`` as
      last used (``learning_rate``: the initial step size; see :func:`nnml_optax.hyperparams`).
    prev_update: the previous direction :math:`d_{t-1}` (the "+" variants; ``None`` otherwise).
  """

  count: jax.Array
  step_sizes: Any
  prev_sign: Any
  prev_value: jax.Array
  hyperparams_used: tuple[jax.Array, ...]
  prev_update: Any = None
  HYPERPARAMS = ("learning_rate", "eta_minus", "eta_plus", "min_step_size", "max_step_size")


def _rprop_leaf(variant: Variant, hps, g, delta, sign_prev, prev: jax.Array | None = None):
  """One real component: returns the unsigned direction d_t, Δ_t and the sign to store."""
  eta_minus, eta_plus, min_step, max_step, rose = hps
  sign = _core.sign_int8(g)
  p = sign * sign_prev  # sign(g_t · g_{t-1}), in {-1, 0, 1}
  factor = jnp.where(p > 0, eta_plus, jnp.where(p < 0, eta_minus, 1))
  delta = delta * factor  # then clipped to [Δmin, Δmax] at every step, as torch:
  delta = jnp.where(delta > max_step, max_step, jnp.where(delta < min_step, min_step, delta))
  flip = p < 0
  if variant == "rprop-":
    return sign * delta, delta, sign
  stored = jnp.where(flip, 0, sign).astype(jnp.int8)  # after a sign change, forget g_t
  if variant == "irprop-":
    return stored * delta, delta, stored  # d_t = 0 on a sign change
  backtrack = flip if variant == "rprop+" else flip & rose
  assert prev is not None  # the "+" variants keep their previous step
  direction = jnp.where(backtrack, -prev, stored * delta)  # undo the last move: d_t = -d_{t-1}
  return direction, delta, stored


def _pack(s_re: jax.Array, s_im: jax.Array) -> jax.Array:
  return (s_re + jnp.int8(3) * s_im).astype(jnp.int8)


def _unpack(s: jax.Array) -> tuple[jax.Array, jax.Array]:
  shifted = s.astype(jnp.int8) + jnp.int8(4)  # (sr+1) + 3·(si+1), in [0, 8]
  return (shifted % 3 - 1).astype(jnp.int8), (shifted // 3 - 1).astype(jnp.int8)


def _rprop_complex(variant: Variant, hps, g, delta, sign_prev, prev=None):
  """Complex parameters: the real and imaginary parts are two independent real weights."""
  (s_re, s_im), part = _unpack(sign_prev), (None, None) if prev is None else (prev.real, prev.imag)
  d_re, z_re, n_re = _rprop_leaf(variant, hps, g.real, delta.real, s_re, part[0])
  d_im, z_im, n_im = _rprop_leaf(variant, hps, g.imag, delta.imag, s_im, part[1])
  return jax.lax.complex(d_re, d_im), jax.lax.complex(z_re, z_im), _pack(n_re, n_im)


def scale_by_rprop(
  learning_rate: float | jax.Array = 0.01,
  eta_minus: optax.ScalarOrSchedule = 0.5,
  eta_plus: optax.ScalarOrSchedule = 1.2,
  min_step_size: optax.ScalarOrSchedule = 1e-6,
  max_step_size: optax.ScalarOrSchedule = 50.0,
  *,
  variant: Variant = "irprop-",
) -> optax.GradientTransformationExtraArgs:
  r"""Resilient backpropagation: per-weight step sizes driven by gradient signs (lecture 6e).

  With :math:`p = \operatorname{sign}(g_t\, g_{t-1})` per weight and :math:`\Delta_0` =
  ``learning_rate``, the step size and the unsigned direction (the weight moves by :math:`-d_t`) are

  .. math::

    \Delta_t = \operatorname{clip}(\Delta_{t-1} \cdot
      \{\eta^+ \text{ if } p > 0;\ \eta^- \text{ if } p < 0;\ 1\},\ \Delta_{\min}, \Delta_{\max}),
    \qquad d_t = \operatorname{sign}(g_t)\, \Delta_t \text{ if } p \ge 0.

  On a sign change (:math:`p < 0`) ``"rprop-"`` steps as usual; ``"irprop-"`` (torch's
  ``Rprop``, bit for bit) does not move; ``"rprop+"`` undoes the last move,
  :math:`d_t = -d_{t-1}`; ``"irprop+"`` undoes it only if the loss rose, else does not move. All
  but ``"rprop-"`` then forget :math:`g_t` (store sign 0). Unlike ``optax.scale_by_rprop``, the
  update is the current step, not the previous one. Rprop is a full-batch method: feed it
  full-batch gradients, e.g. through ``optax.MultiSteps``.

  Args:
    learning_rate: the initial step size :math:`\Delta_0 > 0`, read once at init (not a schedule).
    eta_minus: decrease factor :math:`\eta^- \in (0, 1)`.
    eta_plus: increase factor :math:`\eta^+ > 1`.
    min_step_size: :math:`\Delta_{\min} \ge 0`.
    max_step_size: :math:`\Delta_{\max} \ge \Delta_{\min}`.
    variant: ``"irprop-"``, ``"rprop-"``, ``"rprop+"`` or ``"irprop+"``; ``"irprop+"`` needs
      ``update(..., value=loss)``, the full-batch loss where the gradient was taken.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` returning the unsigned direction.

  Raises:
    ValueError: a hyperparameter out of range or an unknown ``variant``; ``"irprop+"`` updated
      without ``value``.
    TypeError: ``learning_rate`` is a schedule.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = optax.chain(nnml_optax.scale_by_rprop(0.1), optax.scale(-1.0))
    >>> w = jnp.array([0.0]); state = tx.init(w)
    >>> for g in [1.0, 1.0, -1.0]:
    ...   updates, state = tx.update(jnp.array([g]), state)
    ...   w = optax.apply_updates(w, updates)
    ...   print(w.round(4), state[0].step_sizes.round(4))
    [-0.1] [0.1]
    [-0.22] [0.12]
    [-0.22] [0.06]

  References:
    Riedmiller & Braun, "A direct adaptive method for faster backpropagation learning: the RPROP
    algorithm", ICNN 1993. Igel & Hüsken, "Improving the Rprop learning algorithm", 2000, and
    "Empirical evaluation of the improved Rprop learning algorithms", Neurocomputing, 2003.
  """
  _core.check_choice("variant", variant, VARIANTS)
  if _core.is_schedule(learning_rate):
    raise TypeError(
      "learning_rate is Rprop's initial step size Δ₀, read once at init: it cannot be a "
      f"schedule (schedule eta_minus, eta_plus, min_step_size or max_step_size); got "
      f"{learning_rate!r}"
    )
  _core.check_range("learning_rate", learning_rate, 0.0, None, lo_open=True, schedule=False)
  _core.check_range("eta_minus", eta_minus, 0.0, 1.0, lo_open=True, hi_open=True)
  _core.check_range("eta_plus", eta_plus, 1.0, None, lo_open=True)
  _core.check_range("min_step_size", min_step_size, 0.0, None)
  _core.check_range("max_step_size", max_step_size, 0.0, None, lo_open=True)
  lo, hi = _core.concrete_value(min_step_size), _core.concrete_value(max_step_size)
  if lo is not None and hi is not None and lo > hi:
    raise ValueError(f"min_step_size must be <= max_step_size (= {hi:g}); got min_step_size={lo:g}")
  plus = variant in ("rprop+", "irprop+")

  def init_fn(params):
    def step_sizes(p):
      if jnp.iscomplexobj(p):
        return jnp.full_like(p, learning_rate * (1 + 1j), _core.compute_dtype(p.dtype))
      return jnp.full_like(p, learning_rate, _core.compute_dtype(p.dtype))

    sizes = jax.tree.map(step_sizes, params)
    return RpropState(
      count=jnp.zeros([], jnp.int32),
      step_sizes=sizes,
      prev_sign=jax.tree.map(lambda p: jnp.zeros_like(p, jnp.int8), params),
      prev_value=jnp.full([], jnp.inf, _core.scalar_dtype(params)),
      hyperparams_used=_core.record_init(
        params, learning_rate, eta_minus, eta_plus, min_step_size, max_step_size
      ),
      prev_update=jax.tree.map(jnp.zeros_like, sizes) if plus else None,
    )

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del params, extra_args
    prev_value, rose = state.prev_value, jnp.zeros([], bool)
    if variant == "irprop+":
      if value is None:
        raise ValueError(
          'scale_by_rprop(variant="irprop+") needs the extra argument `value`, the loss at the '
          "current parameters: call update(grads, state, params, value=loss)"
        )
      if jnp.ndim(value) != 0:
        raise ValueError(f"value must be a scalar loss; got shape {jnp.shape(value)}")
      prev_value = jnp.asarray(value).astype(state.prev_value.dtype)
      rose = prev_value > state.prev_value
    hps = _core.hypers_at(state.count, eta_minus, eta_plus, min_step_size, max_step_size)

    def leaf(g, delta, sign_prev, prev=None):
      rule = _rprop_complex if jnp.iscomplexobj(delta) else _rprop_leaf
      args = (*hps(delta.dtype), rose), g, delta, sign_prev, prev
      direction, delta, sign = rule(variant, *args)
      return direction.astype(g.dtype), delta, sign, direction

    trees = (updates, state.step_sizes, state.prev_sign) + ((state.prev_update,) if plus else ())
    out, step_sizes, prev_sign, prev_update = _core.unzip(
      _tracing.map_leaves(leaf, *trees), updates, 4
    )
    return out, RpropState(
      count=_core.safe_increment(state.count),
      step_sizes=step_sizes,
      prev_sign=prev_sign,
      prev_value=prev_value,
      hyperparams_used=_core.record(
        state.prev_value.dtype,
        learning_rate,
        *(
          _core.resolve(h, state.count) for h in (eta_minus, eta_plus, min_step_size, max_step_size)
        ),
      ),
      prev_update=prev_update if plus else None,
    )

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def rprop(
  learning_rate: float | jax.Array = 0.01,
  eta_minus: optax.ScalarOrSchedule = 0.5,
  eta_plus: optax.ScalarOrSchedule = 1.2,
  min_step_size: optax.ScalarOrSchedule = 1e-6,
  max_step_size: optax.ScalarOrSchedule = 50.0,
  *,
  variant: Variant = "irprop-",
) -> optax.GradientTransformationExtraArgs:
  r"""Rprop as an optimizer: :func:`scale_by_rprop` followed by a sign flip (lecture 6e).

  Each weight moves by :math:`-\operatorname{sign}(g)\,\Delta` with its own step size; see
  :func:`scale_by_rprop` for the arguments and the four variants. The default ``"irprop-"`` equals
  ``torch.optim.Rprop`` with the same arguments. Rprop is a full-batch method: give it full-batch
  gradients, or accumulate mini-batches with ``optax.MultiSteps(rprop(...), n_batches)``; for
  mini-batches use rmsprop.

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)
    >>> tx = nnml_optax.rprop(0.1, variant="irprop+")
    >>> w = jnp.array([1.0, 1.0]); state = tx.init(w)
    >>> for _ in range(100):
    ...   loss, grads = jax.value_and_grad(f)(w)
    ...   updates, state = tx.update(grads, state, w, value=loss)
    ...   w = optax.apply_updates(w, updates)
    >>> bool(f(w) < 1e-6)
    True

  References:
    Riedmiller & Braun, ICNN 1993. Igel & Hüsken, 2000 and Neurocomputing, 2003.
  """
  return optax.chain(
    scale_by_rprop(
      learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, variant=variant
    ),
    optax.scale(-1.0),
  )
