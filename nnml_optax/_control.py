"""Learning-rate control from the error (lecture 6a/6b): the bold driver and reduce-on-plateau.

Lecture 6a's recipe for the learning rate: "if the error keeps getting worse or oscillates wildly,
reduce the learning rate; if the error is falling fairly consistently but slowly, increase it";
"write a simple program to automate this way of adjusting the learning rate" (:func:`bold_driver`,
Vogl et al. 1988, Battiti 1989); and "turn down the learning rate when the error
stops decreasing, measured on a separate validation set" (:func:`reduce_on_plateau`, with
:func:`update_plateau` to feed it a validation metric once per epoch).

Both are gradient transformations that multiply the incoming updates by a scalar scale: chain them
*after* an optimizer (after its learning rate), e.g. ``optax.chain(nnml_optax.momentum(0.1),
nnml_optax.bold_driver())``. "Turn the learning rate down towards the end" needs nothing new: use an
optax schedule (``optax.cosine_decay_schedule``, ``optax.linear_schedule``...) as the learning rate.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from . import _core, _tracing


def _scalar_value(value: Any, who: str) -> jax.Array:
  """The ``value=`` extra argument as a real scalar array; a clear error when it is missing."""
  if value is None:
    raise ValueError(
      f"{who} needs the extra argument `value`, the loss (a scalar) at the current parameters: "
      "call update(updates, state, params, value=loss)"
    )
  v = jnp.asarray(value)
  if v.ndim != 0:
    raise ValueError(f"{who}: `value` must be a scalar; got shape {v.shape}")
  if not jnp.issubdtype(v.dtype, jnp.floating) and not jnp.issubdtype(v.dtype, jnp.integer):
    raise TypeError(f"{who}: `value` must be a real number; got dtype {v.dtype}")
  return v


# ---------------------------------------------------------------------------------------------
# bold driver
# ---------------------------------------------------------------------------------------------


class BoldDriverState(NamedTuple):
  """State of :func:`bold_driver`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    driver_scale: the current multiplier of the incoming updates (starts at 1); log it with
      ``optax.tree.get(state, "driver_scale")``.
    reference_value: the loss at the point the last step was taken from; ``+inf`` when there is
      none to compare with (the first call and the call after an undo).
    previous_step: the update emitted by the last call (what an undo negates); an empty tuple when
      ``undo=False``.
    hyperparams_used: ``(increase, decrease, tolerance, max_scale)`` as last used (see
      :func:`nnml_optax.hyperparams`).
  """

  count: jax.Array
  driver_scale: jax.Array
  reference_value: jax.Array
  previous_step: Any
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("increase", "decrease", "tolerance", "max_scale")


def bold_driver(
  increase: optax.ScalarOrSchedule = 1.1,
  decrease: optax.ScalarOrSchedule = 0.5,
  *,
  tolerance: optax.ScalarOrSchedule = 0.0,
  undo: bool = True,
  max_scale: optax.ScalarOrSchedule = 1e3,
) -> optax.GradientTransformationExtraArgs:
  r"""The bold driver: grow the step while the loss falls, shrink it (and undo) when it rises.

  The lecture's "simple program that automates" the learning-rate recipe (6a). Chained after an
  optimizer, it multiplies the incoming updates :math:`u_t` by a scale :math:`s` (starting at 1)
  and reads ``value`` :math:`E_t`, the loss at the current parameters. With :math:`E_\text{ref}`
  the loss at the point the last step was taken from:

  .. math::

    \text{rise} = \neg\,\mathrm{isfinite}(E_t) \;\lor\;
      E_t > E_\text{ref} + \text{tolerance}\cdot|E_\text{ref}|

  * no rise: :math:`s \leftarrow \min(\rho s, s_\text{max})` and the step :math:`s\,u_t` is taken
    (:math:`E_\text{ref} \leftarrow E_t`);
  * rise: :math:`s \leftarrow \sigma s`; with ``undo=True`` the emitted update is
    :math:`-\Delta_{t-1}`, which returns the parameters to the accepted point (up to rounding),
    and the next call takes a plain step :math:`s\,u` from there without comparing or changing
    :math:`s` (Battiti's retry from the same point). With ``undo=False`` the step :math:`s\,u_t`
    is taken with the reduced scale;
  * the first call has nothing to compare with: it takes the step :math:`u_1` (:math:`s = 1`).
    A non-finite loss there shrinks :math:`s` and emits zeros.

  Equality counts as success, so a loss that stops changing (a flat region, a minimum reached
  exactly) grows :math:`s` at every call: ``max_scale`` caps it (without a cap, 1.1 per call reaches
  ``inf`` in float32 after about 930 calls and the parameters become NaN). The optimizer before it in the chain still sees the gradient of a
  rejected call (Vogl et al. also zero the momentum after a failure; this transform does not).
  ``value`` must be the loss where the gradient was taken; with mini-batches it is noisy: use big
  batches, a ``tolerance``, or ``undo=False``. The saved step is one copy of the parameters
  (none with ``undo=False``).

  Args:
    increase: :math:`\rho > 1`, the factor applied to the scale after a success (float or
      schedule of the step count).
    decrease: :math:`\sigma \in (0, 1)`, the factor applied after a rise.
    tolerance: relative rise that is still accepted, :math:`\ge 0` (e.g. 0.04 for MATLAB's 4 %).
    undo: on a rise, emit the update that returns to the last accepted point.
    max_scale: :math:`s_\text{max} \ge 1`, the largest scale (float or schedule); the default
      1e3 lets the driver raise the optimizer's learning rate a thousandfold.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` whose ``update`` requires ``value=``.

  Raises:
    ValueError: a hyperparameter out of range; ``update`` without a scalar ``value``.
    TypeError: ``undo`` is not a bool.

  Examples:
    >>> import jax, jax.numpy as jnp, optax, nnml_optax
    >>> f = lambda w: jnp.sum(w ** 2)
    >>> tx = optax.chain(nnml_optax.sgd(0.9), nnml_optax.bold_driver())
    >>> w = jnp.array([1.0]); state = tx.init(w)
    >>> for _ in range(6):
    ...   value, grad = jax.value_and_grad(f)(w)
    ...   updates, state = tx.update(grad, state, w, value=value)
    ...   w = optax.apply_updates(w, updates)
    >>> print(w.round(6))  # 1, -0.8, 0.784, -0.923552, 0.784, -0.069776, 0.013809
    [0.013809]
    >>> print(optax.tree.get(state, "driver_scale").round(5))  # 1.1 * 1.1 / 2 * 1.1
    0.6655

  References:
    Vogl, Mangis, Rigler, Zink & Alkon, "Accelerating the convergence of the back-propagation
    method", Biological Cybernetics 59, 1988.
    Battiti, "Accelerated backpropagation learning: two optimization methods", Complex Systems 3,
    1989.
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6a, 2012.
  """
  _core.check_range("increase", increase, 1.0, None, lo_open=True)
  _core.check_range("decrease", decrease, 0.0, 1.0, lo_open=True, hi_open=True)
  _core.check_range("tolerance", tolerance, 0.0, None)
  _core.check_bool("undo", undo)
  _core.check_range("max_scale", max_scale, 1.0, None)

  def init_fn(params):
    sdt = _core.scalar_dtype(params)
    previous = (
      jax.tree.map(lambda p: _core.zeros_like(p, _core.state_dtype(p)), params) if undo else ()
    )
    return BoldDriverState(
      count=_core.count_zero(),
      driver_scale=jnp.ones([], sdt),
      reference_value=jnp.full([], jnp.inf, sdt),
      previous_step=previous,
      hyperparams_used=_core.record_init(params, increase, decrease, tolerance, max_scale),
    )

  def update_fn(updates, state, params=None, *, value=None, **extra_args):
    del params, extra_args
    sdt = state.driver_scale.dtype
    v = _scalar_value(value, "bold_driver").astype(sdt)
    rho = _core.hyper(_core.resolve(increase, state.count), sdt)
    sigma = _core.hyper(_core.resolve(decrease, state.count), sdt)
    tol = _core.hyper(_core.resolve(tolerance, state.count), sdt)
    cap = _core.hyper(_core.resolve(max_scale, state.count), sdt)

    ref = state.reference_value
    armed = jnp.isfinite(ref)  # there is a point to compare with
    finite = jnp.isfinite(v)
    safe_ref = jnp.where(armed, ref, 0.0)
    rise = armed & (~finite | (v > safe_ref + tol * jnp.abs(safe_ref)))
    grow = armed & ~rise
    shrink = rise | ~finite
    scale = state.driver_scale * jnp.where(grow, rho, jnp.where(shrink, sigma, 1.0))
    scale = jnp.minimum(scale, cap)  # an unchanged loss is a success: s would grow without bound
    undo_now = rise if undo else jnp.zeros([], bool)
    step_now = armed | finite  # only a non-finite loss with nothing to compare emits zeros
    new_ref = jnp.where(undo_now, jnp.inf, jnp.where(finite, v, ref))

    def leaf(u, *prev):
      ct = _core.compute_dtype(u.dtype, *(p.dtype for p in prev))
      out = jnp.where(step_now, u.astype(ct) * _core.hyper(scale, ct), jnp.zeros([], ct))
      if prev:
        out = jnp.where(undo_now, -prev[0].astype(ct), out)
      out = out.astype(u.dtype)
      return (out, out.astype(prev[0].dtype)) if prev else (out, None)

    if undo:
      pairs = _tracing.map_leaves(leaf, updates, state.previous_step)
      out, previous = _core.unzip(pairs, updates, 2)
    else:
      out = _tracing.map_leaves(lambda u: leaf(u)[0], updates)
      previous = ()
    new_state = BoldDriverState(
      count=_core.safe_increment(state.count),
      driver_scale=scale.astype(sdt),
      reference_value=new_ref.astype(sdt),
      previous_step=previous,
      hyperparams_used=_core.record(sdt, rho, sigma, tol, cap),
    )
    return out, new_state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------------------
# reduce on plateau
# ---------------------------------------------------------------------------------------------


class _DefaultValueArg(str):
  """The default of ``reduce_on_plateau(value_arg=...)``: reads ``value=`` as 0.1.0 did, with a
  ``DeprecationWarning``; a distinct object, so that an explicit ``"value"`` does not warn."""


_VALUE_DEPRECATED = _DefaultValueArg("value")
_DEPRECATION = (
  "reduce_on_plateau evaluated the `value=` passed to update(), as in 0.1.0; from 0.3.0 it "
  "evaluates only in nnml_optax.update_plateau unless told which extra argument to read. Pass "
  "value_arg=None (validation metrics through update_plateau; `value=` is then left to the "
  "transforms that need the training loss) or value_arg='value' to keep evaluating it"
)


class PlateauRule(NamedTuple):
  """The decision rule of :func:`reduce_on_plateau` as last resolved by ``update`` (arrays), kept in
  the state so that :func:`update_plateau` can evaluate a metric without the transform."""

  factor: jax.Array
  min_scale: jax.Array
  rtol: jax.Array
  atol: jax.Array
  patience: jax.Array
  cooldown: jax.Array
  mode_sign: jax.Array  # +1 to minimise, -1 to maximise


class ReduceOnPlateauState(NamedTuple):
  """State of :func:`reduce_on_plateau`.

  Attributes:
    count: number of updates so far (int32), the step at which schedules are read.
    plateau_scale: the multiplier of the incoming updates (starts at 1); log it with
      ``optax.tree.get(opt_state, "plateau_scale")``.
    best_value: the best metric so far (``+inf``, or ``-inf`` for ``mode="max"``, before any).
    bad_evaluations: consecutive evaluations without improvement (torch's ``num_bad_epochs``).
    cooldown_left: evaluations left in the cooldown after a reduction.
    rule: the hyperparameters the evaluation uses (:class:`PlateauRule`).
  """

  count: jax.Array
  plateau_scale: jax.Array
  best_value: jax.Array
  bad_evaluations: jax.Array
  cooldown_left: jax.Array
  rule: PlateauRule


def _evaluate(state: ReduceOnPlateauState, value: jax.Array) -> ReduceOnPlateauState:
  """One evaluation of the metric in torch ``ReduceLROnPlateau.step``'s order, with a
  sign-correct threshold."""
  r = state.rule
  sdt = state.plateau_scale.dtype
  v = value.astype(sdt)
  best = state.best_value
  known = jnp.isfinite(best)
  threshold = jnp.where(known, r.rtol * jnp.abs(jnp.where(known, best, 0.0)) + r.atol, 0.0)
  improved = jnp.isfinite(v) & (r.mode_sign * v < r.mode_sign * best - threshold)
  best = jnp.where(improved, v, best)
  bad = jnp.where(improved, 0, _core.safe_increment(state.bad_evaluations))
  cooling = state.cooldown_left > 0
  cooldown_left = jnp.where(cooling, state.cooldown_left - 1, state.cooldown_left)
  bad = jnp.where(cooling, 0, bad)
  reduce = bad > r.patience
  scale = state.plateau_scale
  reduced = jnp.minimum(scale, jnp.maximum(scale * r.factor, r.min_scale))  # never raises it
  return state._replace(
    plateau_scale=jnp.where(reduce, reduced, scale).astype(sdt),
    best_value=best.astype(sdt),
    bad_evaluations=jnp.where(reduce, 0, bad).astype(jnp.int32),
    cooldown_left=jnp.where(reduce, r.cooldown, cooldown_left).astype(jnp.int32),
  )


def reduce_on_plateau(
  factor: optax.ScalarOrSchedule = 0.1,
  patience: int = 10,
  *,
  cooldown: int = 0,
  min_scale: optax.ScalarOrSchedule = 0.0,
  rtol: optax.ScalarOrSchedule = 1e-4,
  atol: optax.ScalarOrSchedule = 0.0,
  mode: Literal["min", "max"] = "min",
  value_arg: str | None = _VALUE_DEPRECATED,
) -> optax.GradientTransformationExtraArgs:
  r"""Turns the learning rate down when a (validation) metric stops improving (lecture 6a).

  Multiplies the incoming updates by a scale :math:`s` (starting at 1), chained after an optimizer.
  Each evaluation of the metric :math:`m` (``mode="min"``; ``"max"`` flips the comparisons) does,
  in ``torch.optim.lr_scheduler.ReduceLROnPlateau``'s order:

  .. math::

    \text{improved} = m < m_\text{best} - (\text{rtol}\,|m_\text{best}| + \text{atol})

  then ``best = m`` and ``bad = 0`` if improved, else ``bad += 1``; during a cooldown ``bad = 0``
  and the cooldown counts down; if ``bad > patience``: :math:`s \leftarrow
  \max(s \cdot \text{factor}, \text{min\_scale})`, the cooldown restarts and ``bad = 0``.

  Evaluations happen where ``value_arg`` says. ``None``: only in :func:`update_plateau`, called on
  the whole optimizer state (or an ``nnx.Optimizer``) with a validation metric, e.g. once per
  epoch; ``update`` then only applies the scale and reads no extra argument, so a transform in the
  same chain that needs the training loss (iRprop+, :func:`bold_driver`) can have ``value=``
  without the plateau seeing it. A name, e.g. ``"val_loss"``: also in ``update(...,
  val_loss=m)`` when that argument is given (the new scale applies to that very call, as in
  ``optax.contrib.reduce_on_plateau``). Left out: as in 0.1.0, ``update`` evaluates ``value=``,
  with a ``DeprecationWarning`` (0.3.0 will evaluate only in :func:`update_plateau`).

  Differences from the libraries:
    * torch semantics for ``patience``: the scale drops when the number of consecutive bad
      evaluations *exceeds* ``patience`` (``optax.contrib.reduce_on_plateau`` drops on the
      ``patience``-th, and with ``patience=0`` also on improving ones).
    * the relative threshold uses :math:`|m_\text{best}|`, so it is correct for negative metrics
      (a log-likelihood, an ELBO): torch's ``best * (1 - threshold)`` and optax's
      ``(1 - rtol) * best`` loosen instead of tighten there, and optax never reduces on a constant
      negative loss (google-deepmind/optax PR #1767). For positive metrics it equals torch's
      ``threshold_mode="rel"``; ``rtol=0, atol=t`` equals ``threshold_mode="abs"``.
    * a non-finite metric counts as a bad evaluation; there is no ``eps`` (torch ignores
      reductions smaller than 1e-8) and no averaging over calls (optax's ``accumulation_size``).

  Args:
    factor: multiplier of the scale on a plateau, in (0, 1) (float or schedule of the step count).
    patience: number of bad evaluations tolerated before reducing (int >= 0).
    cooldown: evaluations to wait after a reduction before counting bad ones again (int >= 0).
    min_scale: lower bound of the scale, >= 0.
    rtol: relative improvement threshold, >= 0.
    atol: absolute improvement threshold, >= 0.
    mode: ``"min"`` (a loss or error rate) or ``"max"`` (an accuracy).
    value_arg: ``None`` or the name of the extra argument of ``update`` that holds the metric.

  Returns:
    An ``optax.GradientTransformationExtraArgs``; its state holds ``plateau_scale``.

  Raises:
    ValueError: a hyperparameter out of range or an unknown ``mode``.
    TypeError: ``patience`` or ``cooldown`` is not an int, ``value_arg`` not ``None`` or a str.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = optax.chain(nnml_optax.momentum(0.1, 0.9),
    ...                  nnml_optax.reduce_on_plateau(factor=0.5, patience=1, value_arg=None))
    >>> params = jnp.zeros(3); state = tx.init(params)
    >>> for val_loss in [1.0, 0.9, 0.95, 0.92, 0.93]:        # once per epoch
    ...   state = nnml_optax.update_plateau(state, val_loss)
    >>> print(optax.tree.get(state, "plateau_scale"))
    0.5
    >>> updates, state = tx.update(jnp.ones(3), state)        # every step: lr 0.1 * 0.5
    >>> print(updates)
    [-0.05 -0.05 -0.05]

  References:
    Hinton, Srivastava & Swersky, Neural Networks for Machine Learning, lecture 6a/6b, 2012.
    PyTorch ``torch.optim.lr_scheduler.ReduceLROnPlateau`` (2.x); optax
    ``contrib.reduce_on_plateau`` (0.2.8).
  """
  _core.check_range("factor", factor, 0.0, 1.0, lo_open=True, hi_open=True)
  _core.check_int("patience", patience, 0)
  _core.check_int("cooldown", cooldown, 0)
  _core.check_range("min_scale", min_scale, 0.0, None)
  _core.check_range("rtol", rtol, 0.0, None)
  _core.check_range("atol", atol, 0.0, None)
  _core.check_choice("mode", mode, ("min", "max"))
  if value_arg is not None and not isinstance(value_arg, str):
    raise TypeError(f"value_arg must be None or the name of an extra argument; got {value_arg!r}")
  sign = 1.0 if mode == "min" else -1.0

  def rule_at(count, sdt) -> PlateauRule:
    h = lambda x: _core.hyper(_core.resolve(x, count), sdt)  # noqa: E731
    return PlateauRule(
      factor=h(factor),
      min_scale=h(min_scale),
      rtol=h(rtol),
      atol=h(atol),
      patience=jnp.asarray(patience, jnp.int32),
      cooldown=jnp.asarray(cooldown, jnp.int32),
      mode_sign=jnp.asarray(sign, sdt),
    )

  def init_fn(params):
    sdt = _core.scalar_dtype(params)
    count = _core.count_zero()
    return ReduceOnPlateauState(
      count=count,
      plateau_scale=jnp.ones([], sdt),
      best_value=jnp.full([], sign * jnp.inf, sdt),
      bad_evaluations=jnp.zeros([], jnp.int32),
      cooldown_left=jnp.zeros([], jnp.int32),
      rule=rule_at(count, sdt),
    )

  def update_fn(updates, state, params=None, **extra_args):
    del params
    sdt = state.plateau_scale.dtype
    state = state._replace(rule=rule_at(state.count, sdt))
    metric = None if value_arg is None else extra_args.get(value_arg)
    if metric is not None:
      if value_arg is _VALUE_DEPRECATED:
        warnings.warn(_DEPRECATION, DeprecationWarning, stacklevel=2)
      state = _evaluate(state, _scalar_value(metric, "reduce_on_plateau"))
    scale = state.plateau_scale

    def leaf(u):
      ct = _core.compute_dtype(u.dtype)
      return (u.astype(ct) * _core.hyper(scale, ct)).astype(u.dtype)

    out = _tracing.map_leaves(leaf, updates)
    return out, state._replace(count=_core.safe_increment(state.count))

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def update_plateau(opt_state: Any, value: Any) -> Any:
  r"""Feeds a metric (e.g. the validation loss of an epoch) to every :func:`reduce_on_plateau`
  inside an optimizer state.

  Finds each ``ReduceOnPlateauState`` in ``opt_state`` (inside any nesting of ``optax.chain``,
  ``inject_hyperparams``, ``masked``, ``MultiSteps``... states), evaluates ``value`` with the rule
  stored there (the hyperparameters as last resolved by ``update``) and changes only those parts.
  No gradients are fed and the step count does not move. Jittable (``jax.jit``, ``nnx.jit``).

  Args:
    opt_state: the state of an optimizer that contains :func:`reduce_on_plateau`; or an
      ``nnx.Optimizer`` (or its ``opt_state``), which is updated in place.
    value: the metric, a real scalar.

  Returns:
    The new state; for an ``nnx.Optimizer`` or its ``opt_state``, the same object, updated.

  Raises:
    ValueError: ``opt_state`` contains no ``ReduceOnPlateauState``, or ``value`` is not a scalar.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> tx = optax.chain(nnml_optax.sgd(0.1),
    ...                  nnml_optax.reduce_on_plateau(0.5, patience=0, value_arg=None))
    >>> state = tx.init(jnp.zeros(2))
    >>> for val_loss in [1.0, 1.0]:
    ...   state = nnml_optax.update_plateau(state, val_loss)
    >>> print(optax.tree.get(state, "plateau_scale"))
    0.5

    With ``flax.nnx``: ``nnml_optax.update_plateau(optimizer, val_loss)``.
  """
  v = _scalar_value(value, "update_plateau")
  if _core.is_nnx_state(opt_state):
    _core.write_state(opt_state, update_plateau(_core.pure_state(opt_state), v))
    return opt_state
  found = []

  def visit(node):
    if isinstance(node, ReduceOnPlateauState):
      found.append(node)
      return _evaluate(node, v)
    return node

  new_state = jax.tree.map(visit, opt_state, is_leaf=lambda x: isinstance(x, ReduceOnPlateauState))
  if not found:
    raise ValueError(
      "update_plateau: opt_state contains no ReduceOnPlateauState; chain "
      "nnml_optax.reduce_on_plateau(...) into the optimizer"
    )
  return new_state
