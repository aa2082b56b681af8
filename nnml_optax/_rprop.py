"""The Rprop family: Rprop-, Rprop+, iRprop-, iRprop+ (lecture 6e).

Riedmiller & Braun 1993; Igel & Hüsken 2000, 2003.

Rprop uses only the *sign* of each partial derivative and adapts a separate step size per weight:
multiply it by ``eta_plus`` (1.2) when the last two derivatives agree in sign, by ``eta_minus``
(0.5) when they disagree, and keep it in ``[min_step_size, max_step_size]`` (the lecture's 1e-6
and 50).
The four variants differ in what happens on a sign change (SPEC §4):

* ``"rprop-"``: always step by ``-sign(g)·Δ``;
* ``"rprop+"``: undo the previous weight change (weight backtracking) and forget the derivative;
* ``"irprop-"``: do not move and forget the derivative (``torch.optim.Rprop``, bit for bit);
* ``"irprop+"``: undo the previous weight change only if the loss rose, else do not move.

The state is compact: the step sizes (float32; float64 for float64 parameters) and the previous
derivative's sign as int8, 5 bytes per parameter. The "+" variants also keep the previous
direction (9 bytes per parameter): it equals ``sign_prev · Δ_prev`` whenever backtracking needs
it, but reading ``Δ_prev`` after it is overwritten costs XLA a full-size copy every step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax import lax

from . import _core
from ._core import ScalarOrSchedule

VARIANTS = ("rprop-", "rprop+", "irprop-", "irprop+")


class ScaleByRpropState(NamedTuple):
  """State of :func:`scale_by_rprop`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    step_sizes: the per-weight step sizes Δ, one array per parameter, float32 (float64 for
      float64 parameters). For a complex parameter the real and imaginary parts hold the step
      sizes of the real and imaginary components (complex64/complex128).
    prev_sign: the sign of the stored previous derivative, int8 in {-1, 0, 1} (0 after a
      "frozen" step, a zero derivative, or before the first step). For a complex parameter both
      signs are packed into one int8 as ``sign_re + 3·sign_im``.
    prev_value: the loss ``value`` seen at the previous step (float32 scalar, float64 when a
      parameter is float64), initially ``+inf``; only ``"irprop+"`` reads and writes it.
    prev_update: ``"rprop+"`` and ``"irprop+"`` only (``None`` for the "-" variants): the
      previous unsigned direction :math:`d_{t-1}` (the weight moved by :math:`-d_{t-1}`), with
      the dtype of ``step_sizes``, initially 0; backtracking returns :math:`-d_{t-1}`.
  """

  count: jax.Array
  step_sizes: Any
  prev_sign: Any
  prev_value: jax.Array
  prev_update: Any = None


def _validate(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, variant) -> None:
  _core.check_choice("variant", variant, VARIANTS)
  if _core.is_schedule(learning_rate):
    raise TypeError(
      "learning_rate is Rprop's initial step size Δ₀, read once at init: it cannot be a "
      f"schedule (schedule eta_minus, eta_plus, min_step_size or max_step_size instead); got "
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


def _real_rule(variant, g, sp, delta, em, ep, lo, hi, rose, prev=None):
  """One real component: returns (unsigned direction, new sign int8, new step size).

  ``g`` gradient (any real float dtype), ``sp`` previous sign (int8), ``delta`` step size and the
  hyperparameters in the compute dtype ``ct``, ``rose`` a bool scalar (iRprop+ only), ``prev`` the
  previous direction (the "+" variants only).

  The loop structure is chosen for XLA:CPU, which emits one loop per output (no sibling
  multi-output fusion) and copies a donated state buffer into a fresh temporary, page-faulted on
  every step, whenever a loop reads its old value after another loop may have overwritten it.
  So each output reads the *new* arrays it shares with the others (``_core.materialize`` stops
  XLA from recomputing them), and the data dependencies order the loops: step size, then
  direction, then sign, then the parameter update, each reading only buffers not yet overwritten.
  """
  ct = delta.dtype
  sg = _core.sign_int8(g)
  p = sg * sp  # sign(g_t · g_prev), never overflows
  # lax.select rather than jnp.where, which traces (and XLA then inlines) a nested jit per call
  factor = lax.select(
    p > 0,
    lax.full_like(delta, ep),
    lax.select(p < 0, lax.full_like(delta, em), lax.full_like(delta, 1)),
  )
  delta_new = _core.clip(delta * factor, lo, hi)  # clamped even when factor = 1 (torch)
  delta_new = _core.materialize(delta_new)
  flip = p < 0
  if variant in ("rprop-", "irprop-"):
    # "freeze" (iRprop-): store 0 after a sign change, and then the step -sign·Δ is 0 too, so the
    # direction is sign_new·Δ_new for both, computed from the two new state arrays. The sign reads
    # the new step size so that it is written after the step-size loop has read the old signs: a
    # NaN step size stores sign 0, which changes nothing (NaN stays NaN). (_core.after here lets
    # XLA recompute Δ_new inside the sign's loop, and the old signs get copied again.)
    forget = jnp.isnan(delta_new) if variant == "rprop-" else flip | jnp.isnan(delta_new)
    sign_new = _core.materialize(lax.select(forget, lax.full_like(sg, 0), sg))
    return sign_new.astype(ct) * delta_new, sign_new, delta_new
  # "+" variants: backtracking undoes the previous weight change, i.e. returns -prev. The
  # previous direction is kept as state (rather than recomputed as sign_prev·Δ_prev, which is
  # equal: a sign change needs sign_prev != 0, so the previous step was a normal one) because the
  # old Δ would have to be read after its overwrite (a full-size copy every step, 2.3x slower).
  step = sg.astype(ct) * delta_new  # -sign(g)·Δ is the weight change
  back = flip if variant == "rprop+" else flip & rose
  direction = lax.select(back, -prev, lax.select(flip, lax.full_like(step, 0), step))
  direction = _core.materialize(direction)
  # "freeze": store 0 after a sign change (written after the direction, see above)
  sign_new = _core.after(lax.select(flip, lax.full_like(sg, 0), sg), direction)
  return direction, sign_new, delta_new


def _pack(s_re: jax.Array, s_im: jax.Array) -> jax.Array:
  return (s_re + jnp.int8(3) * s_im).astype(jnp.int8)


def _unpack(s: jax.Array) -> tuple[jax.Array, jax.Array]:
  shifted = s.astype(jnp.int8) + jnp.int8(4)  # (sr+1) + 3·(si+1), in [0, 8]
  return (shifted % 3 - 1).astype(jnp.int8), (shifted // 3 - 1).astype(jnp.int8)


@functools.cache
def _rprop_rule(variant: str) -> Callable:
  """The per-leaf rule of one variant, shared by every transform of that variant: traced once per
  leaf signature (``_core.trace_once``) and, outside ``jit``, compiled once; arrays are arguments."""

  @_core.trace_once
  def rule(consts, g, delta, sp, prev=None):
    em, ep, lo, hi, rose = consts
    if jnp.iscomplexobj(delta):
      s_re, s_im = _unpack(sp)
      part = (None, None) if prev is None else (jnp.real(prev), jnp.imag(prev))
      d_re, n_re, z_re = _real_rule(
        variant, jnp.real(g), s_re, jnp.real(delta), em, ep, lo, hi, rose, part[0]
      )
      d_im, n_im, z_im = _real_rule(
        variant, jnp.imag(g), s_im, jnp.imag(delta), em, ep, lo, hi, rose, part[1]
      )
      direction = jax.lax.complex(d_re, d_im)
      return (
        direction.astype(g.dtype),
        jax.lax.complex(z_re, z_im).astype(delta.dtype),
        _pack(n_re, n_im),
        direction.astype(delta.dtype),
      )
    direction, sign_new, delta_new = _real_rule(variant, g, sp, delta, em, ep, lo, hi, rose, prev)
    return direction.astype(g.dtype), delta_new.astype(delta.dtype), sign_new, direction

  return rule


def scale_by_rprop(
  learning_rate: float = 0.01,
  eta_minus: ScalarOrSchedule = 0.5,
  eta_plus: ScalarOrSchedule = 1.2,
  min_step_size: ScalarOrSchedule = 1e-6,
  max_step_size: ScalarOrSchedule = 50.0,
  *,
  variant: str = "irprop-",
) -> optax.GradientTransformationExtraArgs:
  r"""Resilient backpropagation (Rprop): per-weight step sizes driven by gradient signs.

  With :math:`p = \operatorname{sign}(g_t)\operatorname{sign}(g_{\text{prev}})` for each weight,

  .. math::

    \Delta_t = \operatorname{clip}\bigl(\Delta_{t-1} \cdot
      \{\eta^+ \text{ if } p > 0;\ \eta^- \text{ if } p < 0;\ 1 \text{ if } p = 0\},\
      \Delta_{\min}, \Delta_{\max}\bigr)

  and the returned (unsigned) direction :math:`d_t` -- the weight moves by :math:`-d_t` -- is

  .. math::

    d_t = \begin{cases}
      \operatorname{sign}(g_t)\,\Delta_t & p \ge 0 \text{ (all variants), or } p < 0
        \text{ for Rprop}^- \\
      0 & p < 0 \text{: iRprop}^-\text{, and iRprop}^+ \text{ when } E_t \le E_{t-1} \\
      -\operatorname{sign}(g_{\text{prev}})\,\Delta_{t-1} & p < 0 \text{: Rprop}^+\text{, and
        iRprop}^+ \text{ when } E_t > E_{t-1} \text{ (undo the last move)}
    \end{cases}

  After a sign change the "+" and "i" variants store :math:`g_{\text{prev}} = 0` ("freeze"), so
  the next step does not adapt :math:`\Delta` and takes a normal step; Rprop- stores
  :math:`g_t`. A zero gradient neither moves the weight nor adapts its step size.

  ``"irprop-"`` (the default) is ``torch.optim.Rprop`` bit for bit in float64, including the clamp
  of :math:`\Delta_0` into the bounds on the first step (``learning_rate=100`` makes the first
  step 50) and no move on a sign change. All variants clamp :math:`\Delta` at every step, which
  also makes scheduled bounds take effect at once. Unlike ``optax.scale_by_rprop`` (0.2.8), the
  update is the current step, not the previous one (google-deepmind/optax PR #1725), and the
  signs are compared directly (torch compares ``sign(g·g_prev)``, which differs only when the
  product under- or overflows).

  **Rprop is a full-batch method** (lecture 6e): with mini-batches the sign of each derivative is
  mostly sampling noise, and a weight that gets +0.1 nine times and -0.9 once drifts by eight
  steps instead of staying put (§1.7). Feed it the full-batch gradient, or accumulate mini-batch
  gradients with ``optax.MultiSteps(nnml_optax.rprop(...), every_k_schedule=n_batches)``; for
  mini-batches use rmsprop, the lecture's mini-batch version of the same idea. With ``"irprop+"``
  under ``MultiSteps``, only the ``value`` passed at the last mini-step of each accumulation
  reaches the transform: pass the full-batch loss (e.g. the mean of the mini-batch losses).

  Complex parameters: the real and imaginary parts are treated as two independent real weights,
  each with its own step size and sign.

  Args:
    learning_rate: the initial per-weight step size :math:`\Delta_0 > 0`. It is **read once, at
      init**, and cannot be a schedule (changing it later, e.g. through
      ``optax.inject_hyperparams``, has no effect). It is clamped into the bounds on the first
      step.
    eta_minus: decrease factor :math:`\eta^- \in (0, 1)`, a float or a schedule.
    eta_plus: increase factor :math:`\eta^+ > 1`, a float or a schedule.
    min_step_size: :math:`\Delta_{\min} \ge 0`, a float or a schedule.
    max_step_size: :math:`\Delta_{\max} \ge \Delta_{\min}`, a float or a schedule.
    variant: ``"irprop-"`` (default, torch), ``"rprop-"``, ``"rprop+"`` or ``"irprop+"``. The
      ``"irprop+"`` update needs the extra argument ``value``, the (full-batch) loss at the
      current parameters, where the gradient was measured.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose update returns the unsigned direction
    (``update(..., value=loss)`` for ``"irprop+"``; other extra arguments are ignored).

  Raises:
    ValueError: a hyperparameter out of range or an unknown ``variant`` (eagerly); ``"irprop+"``
      updated without ``value`` (at update).

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
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
    algorithm", ICNN 1993.
    Igel & Hüsken, "Improving the Rprop learning algorithm", NC 2000; "Empirical evaluation of the
    improved Rprop learning algorithms", Neurocomputing 50, 2003.
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6e, 2012.
  """
  _validate(learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, variant)
  plus = variant in ("rprop+", "irprop+")

  def init_fn(params):
    def step_sizes(p):
      dt = _core.compute_dtype(_core.real_dtype(p.dtype))
      if jnp.issubdtype(p.dtype, jnp.complexfloating):
        dt = jnp.result_type(dt, jnp.complex64)
        return _core.full_like(p, learning_rate * (1 + 1j), dt)
      return _core.full_like(p, learning_rate, dt)

    sizes = jax.tree.map(step_sizes, params)
    return ScaleByRpropState(
      count=_core.count_zero(),
      step_sizes=sizes,
      prev_sign=jax.tree.map(lambda p: _core.zeros_like(p, jnp.int8), params),
      prev_value=jnp.full([], jnp.inf, _core.scalar_dtype(params)),
      prev_update=jax.tree.map(jnp.zeros_like, sizes) if plus else None,
    )

  rule = _rprop_rule(variant)

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del params, extra_args
    if variant == "irprop+":
      if value is None:
        raise ValueError(
          'scale_by_rprop(variant="irprop+") needs the extra argument `value`, the loss at the '
          "current parameters: call update(grads, state, params, value=loss)"
        )
      if jnp.ndim(value) != 0:
        raise ValueError(f"value must be a scalar loss; got shape {jnp.shape(value)}")
      e = jnp.asarray(value).astype(state.prev_value.dtype)
      rose = e > state.prev_value
      prev_value = e
    else:
      rose = jnp.zeros([], bool)
      prev_value = state.prev_value
    consts = _core.hypers_at(state.count, eta_minus, eta_plus, min_step_size, max_step_size)

    def leaf(g, delta, sp, prev=None):
      return rule((*consts(_core.real_dtype(delta.dtype)), rose), g, delta, sp, prev)

    trees = (updates, state.step_sizes, state.prev_sign) + ((state.prev_update,) if plus else ())
    out, step_sizes, prev_sign, prev_update = _core.unzip(jax.tree.map(leaf, *trees), updates, 4)
    return out, ScaleByRpropState(
      count=_core.safe_increment(state.count),
      step_sizes=step_sizes,
      prev_sign=prev_sign,
      prev_value=prev_value,
      prev_update=prev_update if plus else None,
    )

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def rprop(
  learning_rate: float = 0.01,
  eta_minus: ScalarOrSchedule = 0.5,
  eta_plus: ScalarOrSchedule = 1.2,
  min_step_size: ScalarOrSchedule = 1e-6,
  max_step_size: ScalarOrSchedule = 50.0,
  *,
  variant: str = "irprop-",
) -> optax.GradientTransformationExtraArgs:
  r"""Rprop as an optimizer: :func:`scale_by_rprop` followed by a sign flip (lecture 6e).

  Each weight moves by :math:`-\operatorname{sign}(g)\,\Delta` with its own step size
  :math:`\Delta`, grown by ``eta_plus`` while the derivative keeps its sign and shrunk by
  ``eta_minus`` when it flips, kept in ``[min_step_size, max_step_size]``; see
  :func:`scale_by_rprop` for the four variants and the exact rules. The default (``"irprop-"``)
  equals ``torch.optim.Rprop`` with the same arguments.

  Rprop is a **full-batch** method: give it the full-batch gradient, or wrap it as
  ``optax.MultiSteps(rprop(...), every_k_schedule=n_batches)`` to accumulate mini-batch gradients
  into one full-batch step. For mini-batch training use rmsprop instead.

  Args:
    learning_rate: the initial step size :math:`\Delta_0 > 0`, **read once at init** (not a
      schedule; clamped into the bounds on the first step). Rprop has no other learning rate.
    eta_minus: :math:`\eta^- \in (0, 1)`, a float or a schedule.
    eta_plus: :math:`\eta^+ > 1`, a float or a schedule.
    min_step_size: :math:`\Delta_{\min} \ge 0`, a float or a schedule.
    max_step_size: :math:`\Delta_{\max} \ge \Delta_{\min}`, a float or a schedule.
    variant: ``"irprop-"``, ``"rprop-"``, ``"rprop+"`` or ``"irprop+"`` (needs
      ``update(..., value=loss)``).

  Returns:
    An ``optax.GradientTransformationExtraArgs``.

  Examples:
    Full-batch Rprop on a quadratic; iRprop+ also reads the loss:

    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: jnp.sum(jnp.array([1.0, 100.0]) * w ** 2)   # condition number 100
    >>> tx = nnml_optax.rprop(0.1, variant="irprop+")
    >>> w = jnp.array([1.0, 1.0]); state = tx.init(w)
    >>> for _ in range(100):
    ...   loss, grads = jax.value_and_grad(f)(w)
    ...   updates, state = tx.update(grads, state, w, value=loss)
    ...   w = optax.apply_updates(w, updates)
    >>> bool(f(w) < 1e-6)
    True

    Accumulating 4 mini-batch gradients into one full-batch step:

    >>> tx = optax.MultiSteps(nnml_optax.rprop(0.1), every_k_schedule=4)

  References:
    Riedmiller & Braun, ICNN 1993. Igel & Hüsken, NC 2000 and Neurocomputing 2003.
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6e, 2012.
  """
  return optax.chain(
    scale_by_rprop(
      learning_rate, eta_minus, eta_plus, min_step_size, max_step_size, variant=variant
    ),
    optax.scale(-1.0),
  )
