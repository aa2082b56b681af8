"""The one shared helper of nnml_optax.

Everything a technique module needs besides jax and optax lives here:

* scalar-or-schedule resolution (:func:`resolve`), hyperparameters always float32;
* eager validation of Python-number hyperparameters (:func:`check_range`, :func:`check_choice`,
  :func:`check_int`), raising a ``ValueError``/``TypeError`` that names the argument and the allowed
  range; values that are traced (inside ``optax.inject_hyperparams``) or schedules are validated where
  they can be (a schedule is probed at step 0 when that is concrete);
* the dtype policy (:func:`state_dtype`, :func:`compute_dtype`): states are stored in the parameter
  dtype unless an ``accumulator_dtype`` is given, arithmetic happens in at least float32, updates are
  returned in the gradient dtype;
* compact sign helpers (:func:`sign_int8`) for states that only need a sign.

This module is private; nothing in it is part of the public API.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeGuard

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optax

ScalarOrSchedule = optax.ScalarOrSchedule

HYPERPARAM_DTYPE = jnp.float32


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


def _concrete_float(value: Any) -> float | None:
  """``float(value)`` when it is a concrete real scalar, ``None`` when it is traced or a schedule."""
  if isinstance(value, bool):
    raise TypeError(f"expected a number, got the bool {value!r}")
  if isinstance(value, numbers.Real):
    return float(value)
  if isinstance(value, np.ndarray | np.generic):
    if np.ndim(value) != 0:
      raise TypeError(f"expected a scalar, got an array of shape {np.shape(value)}")
    return float(value)
  if isinstance(value, jax.Array):
    if value.ndim != 0:
      raise TypeError(f"expected a scalar, got an array of shape {value.shape}")
    try:
      return float(value)
    except (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError, TypeError):
      return None  # traced: validated by whoever made it concrete
  return None


def _probe(value: Any) -> float | None:
  """Concrete value of a scalar or of a schedule at step 0 (``None`` when unknowable)."""
  if callable(value) and not isinstance(value, jax.Array):
    try:
      out = value(jnp.zeros([], jnp.int32))
      return _concrete_float(jnp.asarray(out))
    except Exception:  # a schedule we cannot evaluate eagerly: checked nowhere else either
      return None
  return _concrete_float(value)


def concrete_value(value: Any) -> float | None:
  """The value of a number, or of a schedule at step 0, as a float; ``None`` when it is traced
  (inside ``optax.inject_hyperparams``) or cannot be evaluated eagerly. Never raises: for checks
  that relate two already-validated hyperparameters (``min <= max``)."""
  try:
    return _probe(value)
  except TypeError:
    return None


def _fmt_interval(lo, hi, lo_open, hi_open) -> str:
  left = "(" if lo_open else "["
  right = ")" if hi_open else "]"
  lo_s = "-inf" if lo is None else f"{lo:g}"
  hi_s = "inf" if hi is None else f"{hi:g}"
  return f"{left}{lo_s}, {hi_s}{right}"


def check_range(
  name: str,
  value: Any,
  lo: float | None = None,
  hi: float | None = None,
  *,
  lo_open: bool = False,
  hi_open: bool = False,
  schedule: bool = True,
) -> None:
  """Checks that a hyperparameter (number or schedule) lies in an interval.

  Args:
    name: the argument's name, used in the error message.
    value: a Python/numpy/jax scalar, or (when ``schedule``) a callable of the step count.
    lo, hi: the bounds (``None`` for unbounded).
    lo_open, hi_open: whether the bounds are excluded.
    schedule: whether a callable is allowed.

  Raises:
    TypeError: ``value`` is not a number (or schedule where allowed).
    ValueError: ``value`` is non-finite or outside the interval; the message names ``name``
      and the allowed interval.
  """
  is_schedule = callable(value) and not isinstance(value, jax.Array)
  if is_schedule and not schedule:
    raise TypeError(f"{name} must be a number, not a schedule; got {value!r}")
  if not is_schedule and not isinstance(value, numbers.Real | np.ndarray | np.generic | jax.Array):
    kind = "a number or a schedule" if schedule else "a number"
    raise TypeError(f"{name} must be {kind}; got {type(value).__name__} {value!r}")
  try:
    x = _probe(value)
  except TypeError as e:
    raise TypeError(f"{name}: {e}") from None
  if x is None:
    return
  interval = _fmt_interval(lo, hi, lo_open, hi_open)
  where = " (the schedule's value at step 0)" if is_schedule else ""
  if not math.isfinite(x):
    raise ValueError(f"{name} must be finite and in {interval}; got {x!r}{where}")
  bad = (lo is not None and (x < lo or (lo_open and x == lo))) or (
    hi is not None and (x > hi or (hi_open and x == hi))
  )
  if bad:
    raise ValueError(f"{name} must be in {interval}; got {x!r}{where}")


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> None:
  """Checks that ``value`` is a Python/numpy integer (not a bool) in ``[lo, hi]``."""
  if isinstance(value, jax.Array) and isinstance(value, jax.core.Tracer):
    return
  if isinstance(value, bool) or not isinstance(value, numbers.Integral | np.integer | jax.Array):
    raise TypeError(f"{name} must be an integer; got {type(value).__name__} {value!r}")
  if isinstance(value, jax.Array):
    if value.ndim != 0 or not jnp.issubdtype(value.dtype, jnp.integer):
      raise TypeError(f"{name} must be an integer scalar; got {value!r}")
  v = int(value)
  if (lo is not None and v < lo) or (hi is not None and v > hi):
    raise ValueError(f"{name} must be an integer in {_fmt_interval(lo, hi, False, False)}; got {v}")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
  """Checks that ``value`` is one of ``choices``."""
  if value not in choices:
    raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")


def check_bool(name: str, value: Any) -> None:
  if not isinstance(value, bool | np.bool_):
    raise TypeError(f"{name} must be a bool; got {type(value).__name__} {value!r}")


def check_dtype(name: str, value: Any) -> None:
  """Checks an optional ``accumulator_dtype`` argument (``None`` or a floating dtype)."""
  if value is None:
    return
  try:
    dt = jnp.dtype(value)
  except TypeError:
    raise TypeError(f"{name} must be None or a floating dtype; got {value!r}") from None
  if not jnp.issubdtype(dt, jnp.floating):
    raise TypeError(f"{name} must be None or a floating dtype; got {dt}")


# ---------------------------------------------------------------------------------------------
# schedules and dtypes
# ---------------------------------------------------------------------------------------------


def is_schedule(value: Any) -> TypeGuard[Callable[[jax.Array], Any]]:
  return callable(value) and not isinstance(value, jax.Array)


def resolve(value: ScalarOrSchedule, count: jax.Array) -> Any:
  """Value of a scalar-or-schedule hyperparameter at ``count``.

  A Python number is returned as it is (weakly typed), so that :func:`hyper` can cast it exactly to
  the compute dtype of each leaf (float32 for bf16/f16/f32 parameters, float64 for float64 ones).
  A constant schedule and the same float therefore give bit-identical results.
  """
  if is_schedule(value):
    return value(count)
  return value


def hyper(value: Any, dtype: Any) -> jax.Array:
  """A resolved hyperparameter as a scalar of ``dtype`` (a compute dtype, never below float32)."""
  return jnp.asarray(value, dtype=real_dtype(dtype))


class hypers_at:
  """Hyperparameters resolved at ``count`` (:func:`resolve`); calling it with a compute dtype
  converts them (:func:`hyper`). ``None`` stays ``None``; ``resolved`` holds the values as
  resolved (for :func:`record`).
  """

  def __init__(self, count: jax.Array, *values: ScalarOrSchedule | None):
    self.resolved = [None if v is None else resolve(v, count) for v in values]

  def __call__(self, dtype: Any) -> tuple:
    return tuple(None if v is None else hyper(v, dtype) for v in self.resolved)


class ScaleByLearningRateState(NamedTuple):
  """State of the learning rate that the aliases chain: the rate the last update applied.

  Attributes:
    hyperparams_used: ``(learning_rate,)`` as a scalar of the state's scalar dtype (see
      :func:`nnml_optax.hyperparams`); at ``init``, the rate the first update will apply.
  """

  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("learning_rate",)


class ScaleByScheduledLearningRateState(NamedTuple):
  """State of a scheduled learning rate (the aliases' ``learning_rate`` given as a schedule).

  Attributes:
    count: number of updates so far (int32), the step at which the schedule is read.
    hyperparams_used: ``(learning_rate,)``, the rate the last update applied (at ``init``, the
      schedule at step 0).
  """

  count: jax.Array  # pyright: ignore[reportIncompatibleMethodOverride] (optax's name)
  hyperparams_used: tuple[jax.Array, ...]
  HYPERPARAMS = ("learning_rate",)


def scale_by_learning_rate(
  learning_rate: ScalarOrSchedule, *, flip_sign: bool = True
) -> optax.GradientTransformation:
  """``optax.scale_by_learning_rate`` that records the rate it applies and keeps update dtypes.

  Multiplies the updates by :math:`-\\eta_t` (by :math:`\\eta_t` with ``flip_sign=False``), the
  rate cast to each update's dtype whatever the kind of scalar (optax multiplies by a constant rate
  as it is given, so a ``jnp.float32`` or injected rate promotes bfloat16 updates to float32).
  Same bits as optax. The state holds the rate (optax's holds none) and, for a schedule, the step
  count.
  """
  sign = -1 if flip_sign else 1
  scheduled = is_schedule(learning_rate)

  def init_fn(params):
    used = record_init(params, learning_rate)
    if scheduled:
      return ScaleByScheduledLearningRateState(count_zero(), used)
    return ScaleByLearningRateState(used)

  def update_fn(updates, state, params=None):
    del params
    if isinstance(state, ScaleByScheduledLearningRateState):
      rate: Any = resolve(learning_rate, state.count)
    else:
      rate = learning_rate
    updates = jax.tree.map(lambda g: jnp.asarray(sign * rate, g.dtype) * g, updates)
    used = record(state.hyperparams_used[0].dtype, rate)
    if isinstance(state, ScaleByScheduledLearningRateState):
      return updates, ScaleByScheduledLearningRateState(safe_increment(state.count), used)
    return updates, ScaleByLearningRateState(used)

  return optax.GradientTransformation(init_fn, update_fn)


def record(dtype: Any, *values: Any) -> tuple[jax.Array, ...]:
  """The hyperparameters an update used, as scalars of a state's scalar dtype (float32, float64
  for float64 parameters), in the order of the state class's ``HYPERPARAMS``; ``None`` (no bound,
  no threshold) as ``+inf``."""
  return tuple(jnp.asarray(jnp.inf if v is None else v, real_dtype(dtype)) for v in values)


def record_init(params: Any, *values: Any) -> tuple[jax.Array, ...]:
  """:func:`record` at ``init``: the values (schedules at step 0) the first update will use."""
  return record(
    scalar_dtype(params), *(None if v is None else resolve(v, count_zero()) for v in values)
  )


def count_zero() -> jax.Array:
  return jnp.zeros([], jnp.int32)


def safe_increment(count: jax.Array) -> jax.Array:
  """``optax.safe_increment``, typed as the array it returns (optax annotates ``ArrayLike``)."""
  return jnp.asarray(optax.safe_increment(count))


def compute_dtype(*dtypes) -> jnp.dtype:
  """The dtype arithmetic happens in: the promotion of ``dtypes`` with float32 (at least f32)."""
  return jnp.result_type(HYPERPARAM_DTYPE, *dtypes)


def state_dtype(leaf: Any, accumulator_dtype: Any = None) -> jnp.dtype:
  """Dtype of a state leaf that mirrors ``leaf``: ``accumulator_dtype`` if given, else the leaf's.

  For complex parameters the accumulator keeps the complex dtype unless the statistic is real
  (use :func:`real_dtype` for those).
  """
  if accumulator_dtype is not None:
    dt = jnp.dtype(accumulator_dtype)
    if jnp.iscomplexobj(leaf) and not jnp.issubdtype(dt, jnp.complexfloating):
      dt = jnp.result_type(dt, jnp.complex64)
    return dt
  return jnp.asarray(leaf).dtype if not hasattr(leaf, "dtype") else jnp.dtype(leaf.dtype)


def scalar_dtype(params: Any) -> jnp.dtype:
  """Dtype of a scalar state kept beside ``params`` (a loss, a scale): float32, or float64 when a
  parameter is float64/complex128. From dtypes only, so it works on abstract params."""
  return real_dtype(compute_dtype(*(real_dtype(leaf.dtype) for leaf in jax.tree.leaves(params))))


def real_dtype(dtype) -> jnp.dtype:
  """The real counterpart of a (possibly complex) dtype."""
  return jnp.finfo(dtype).dtype


def zeros_like(leaf: Any, dtype: Any = None) -> jax.Array:
  """``jnp.zeros_like`` that keeps the leaf's sharding (and works on ``ShapeDtypeStruct``)."""
  return jnp.zeros_like(leaf, dtype=dtype)


def full_like(leaf: Any, value: Any, dtype: Any = None) -> jax.Array:
  return jnp.full_like(leaf, value, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# flax.nnx optimizer states
# ---------------------------------------------------------------------------------------------


def _nnx() -> Any:
  """``flax.nnx`` when it has been imported (else there can be no nnx object to handle)."""
  return sys.modules.get("flax.nnx")


def _variables(nnx: Any, tree: Any) -> list[Any]:
  """The leaves of ``tree``, an ``nnx`` variable counted as one leaf."""
  return jax.tree.leaves(tree, is_leaf=lambda x: isinstance(x, nnx.Variable))


def is_nnx_state(opt_state: Any) -> bool:
  """Whether ``opt_state`` is an ``nnx.Optimizer`` or a state holding ``nnx`` variables."""
  nnx = _nnx()
  if nnx is None:  # flax not imported: there can be no nnx object
    return False
  if isinstance(opt_state, nnx.Optimizer):
    return True
  return any(isinstance(x, nnx.Variable) for x in _variables(nnx, opt_state))


def pure_state(opt_state: Any) -> Any:
  """``opt_state`` as plain arrays: an ``nnx.Optimizer``'s state (its variables' values), or the
  state itself when it holds no ``flax.nnx`` variables."""
  if not is_nnx_state(opt_state):
    return opt_state
  nnx = _nnx()
  return nnx.as_pure(opt_state.opt_state if isinstance(opt_state, nnx.Optimizer) else opt_state)


def write_state(target: Any, new: Any) -> None:
  """Writes a pure state into the variables of an ``nnx.Optimizer`` (or of its ``opt_state``), in
  place; works inside ``nnx.jit``."""
  nnx = _nnx()
  if nnx is None:
    raise TypeError("write_state writes into flax.nnx variables; flax.nnx is not imported")
  variables = _variables(nnx, target.opt_state if isinstance(target, nnx.Optimizer) else target)
  values = jax.tree.leaves(new)
  if len(variables) != len(values):
    raise ValueError("the new state does not have the structure of the optimizer's state")
  for var, value in zip(variables, values, strict=True):
    var.set_value(value)


# ---------------------------------------------------------------------------------------------
# compact signs and per-leaf results
# ---------------------------------------------------------------------------------------------


def sign_int8(x: jax.Array) -> jax.Array:
  """The sign of ``x`` as int8 (-1, 0, 1); NaN gives 0 (no information)."""
  return (x > 0).astype(jnp.int8) - (x < 0).astype(jnp.int8)


def unzip(tree_of_tuples: Any, like: Any, n: int) -> tuple[Any, ...]:
  """Splits a tree whose leaves are ``n``-tuples (the result of one fused per-leaf map) into
  ``n`` trees with the structure of ``like``."""
  treedef = jax.tree.structure(like)
  leaves = treedef.flatten_up_to(tree_of_tuples)
  return tuple(treedef.unflatten([leaf[i] for leaf in leaves]) for i in range(n))


__all__: list[str] = []
