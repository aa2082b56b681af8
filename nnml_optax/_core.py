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

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

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


def is_schedule(value: Any) -> bool:
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


def hypers_at(count: jax.Array, *values: ScalarOrSchedule | None) -> Callable[[Any], tuple]:
  """Hyperparameters resolved at ``count`` (:func:`resolve`), as a function of a compute dtype
  that converts them (:func:`hyper`) once per dtype rather than once per leaf. ``None`` stays
  ``None``.
  """
  resolved = [None if v is None else resolve(v, count) for v in values]

  @functools.cache
  def at(dtype: Any) -> tuple:
    return tuple(None if v is None else hyper(v, dtype) for v in resolved)

  return at


def count_zero() -> jax.Array:
  return jnp.zeros([], jnp.int32)


safe_increment = optax.safe_increment


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
# XLA:CPU workarounds still imported by _rprop, _gains and _vsgd; _momentum and _rmsprop use none
# of them. They go when those rules are rewritten as plain jnp (issue "Readable transforms").
# ---------------------------------------------------------------------------------------------


def clip(x: jax.Array, lo: Any = None, hi: Any = None) -> jax.Array:
  """``jnp.clip(x, lo, hi)`` written with compare-and-select.

  XLA:CPU vectorises ``select`` but not the NaN-propagating ``min``/``max``/``clamp`` in these
  fused kernels: measured 3x slower on a 16M-parameter rmsprop step. NaN passes through, as with
  ``jnp.clip``.
  """
  # lax.select, not jnp.where: jnp.where traces a nested jit for every call (for every leaf),
  # which XLA must inline again: measurable compile time on thousands of leaves.
  if hi is not None:
    x = lax.select(x > hi, lax.full_like(x, hi), x)
  if lo is not None:
    x = lax.select(x < lo, lax.full_like(x, lo), x)
  return x


@functools.cache
def barriers_help() -> bool:
  """Whether :func:`materialize` and :func:`fan_out` place their barriers: on XLA:CPU only.

  Decided by JAX's default backend when a rule is traced (the target of a lowering is not known
  while tracing; ``lax.platform_dependent`` would know it but costs 0.7 ms of tracing and two
  conditionals of HLO per call). The barriers are identities: a computation placed on another
  backend than the default one gets the same numbers, only not the layout tuned for it.
  Measured on one H100 (100M parameters, ``benchmarks/gpu.py``): with the barriers, XLA:GPU wrote
  the shared statistic of rmsprop to memory and read it back in a second kernel, 1.33x optax's step
  time; without them it fuses the update and the state into one kernel.
  """
  return jax.default_backend() == "cpu"


def materialize(x: Any) -> Any:
  """Marks a value that several outputs of a fused per-leaf function share (XLA:CPU).

  An ``optimization_barrier``: XLA neither merges nor rewrites computations across it (common
  subexpressions, algebraic simplification) until it removes barriers, which XLA:CPU does before
  fusion, so it neither forces a buffer nor orders loops. Whether a shared value is then written
  once and read back, or recomputed in each output loop, is the fusion pass's choice (XLA:CPU has
  no sibling multi-output fusion, emits one loop per output, and does not duplicate "expensive"
  operations such as divisions into several loops). What removes full-size temporaries is the
  data flow itself: no loop may need the old value of a donated state array after another loop
  may have overwritten it (XLA then copies the old array to a fresh buffer every step).

  Elsewhere (:func:`barriers_help` false) it returns ``x``: XLA:GPU fuses a per-leaf function's
  outputs into one kernel, and a barrier there splits it (the shared value goes through memory).
  """
  return jax.lax.optimization_barrier(x) if barriers_help() else x


def fan_out(x: jax.Array, n: int) -> tuple[jax.Array, ...]:
  """``n`` copies of ``x`` that XLA:CPU cannot merge back into one value (no data is copied).

  XLA:CPU does not duplicate an "expensive" operation (a division, a square root) into several
  consumer loops: a divided value shared by two outputs is written to a temporary buffer and read
  back. Giving each consumer its own handle on the *inputs* of the division (the elements of one
  ``optimization_barrier`` tuple, which common-subexpression elimination keeps apart) lets each
  loop compute it in registers instead. Elsewhere (:func:`barriers_help` false) the ``n`` copies are
  ``x`` itself: XLA:GPU computes the shared value once in the one fused kernel.
  """
  return jax.lax.optimization_barrier((x,) * n) if barriers_help() else (x,) * n


def after(x: jax.Array, dep: jax.Array) -> jax.Array:
  """``x``, bit for bit, but computed from ``dep`` (same shape) as far as XLA can tell.

  Orders two loops that XLA:CPU would otherwise leave unordered. It computes each output of a
  per-leaf function in its own loop; when one loop reads an old state array and another loop
  overwrites that (donated) array in place, and no data dependency puts the reader first, copy
  insertion copies the old array into a fresh full-size temporary (page-faulted on every step).
  An ``optimization_barrier`` cannot help: it is gone before copy insertion. Making the
  overwriting loop consume the reader's output ``dep`` orders them.

  The dependency is ``bits(x) | (t & ~t)`` with ``t = bits(dep)``: ``bits(x)`` for every input,
  NaN payloads included. XLA does not fold ``t & ~t`` (it does fold ``t - t`` and ``t ^ t``);
  LLVM does, so the loop does not even load ``dep``. Elementwise, it needs no communication
  between shards. The bit casts have no derivative: use it on integer arrays (signs), and
  :func:`after_all` on floating ones.
  """
  if jnp.iscomplexobj(x):
    return lax.complex(after(lax.real(x), dep), lax.imag(x))
  if jnp.iscomplexobj(dep):
    dep = lax.real(dep)
  if dep.dtype == jnp.bool_:
    dep = lax.convert_element_type(dep, jnp.uint8)
  ux = jnp.dtype(f"uint{8 * x.dtype.itemsize}")
  t = lax.bitcast_convert_type(dep, jnp.dtype(f"uint{8 * dep.dtype.itemsize}"))
  if t.dtype != ux:
    t = lax.convert_element_type(t, ux)
  zero = lax.bitwise_and(t, lax.bitwise_not(t))
  return lax.bitcast_convert_type(lax.bitwise_or(lax.bitcast_convert_type(x, ux), zero), x.dtype)


@jax.custom_jvp
def after_all(xs: list[jax.Array], deps: list[jax.Array]) -> list[jax.Array]:
  """:func:`after` on lists of leaves, differentiable as the identity in ``xs``.

  One ``custom_jvp`` for all leaves: one per leaf adds half to the tracing and lowering time of a
  1000-leaf update.
  """
  return [after(x, dep) for x, dep in zip(xs, deps, strict=True)]


@after_all.defjvp
def _after_all_jvp(primals, tangents):
  return after_all(*primals), tangents[0]


def sign_int8(x: jax.Array) -> jax.Array:
  """The sign of ``x`` as int8 (-1, 0, 1); NaN gives 0 (no information)."""
  return (x > 0).astype(jnp.int8) - (x < 0).astype(jnp.int8)


def trace_once(fn: Callable) -> Callable:
  """Makes JAX trace a per-leaf rule once per leaf signature (shapes, dtypes) instead of per leaf.

  ``jax.jit(fn)`` inside the update: JAX caches the traced rule by its arguments' shapes and dtypes
  and lowers it to one function per signature, called once per leaf; XLA inlines the calls before
  any optimisation, so the compiled update is the same. Tracing and lowering get cheaper, and
  so does XLA's own conversion of the smaller module (1,000 leaves of 7 shapes, whole compile:
  Rprop 10.5 s with the rule inlined by JAX, 8.0 s with calls; optax.rprop 9.0 s). ``fn`` must
  take every array it reads as an argument: a closed-over array would become a run-time input
  of the compiled step instead of a constant. Python values (flags, dtypes) may be closed over.
  """
  return jax.jit(fn)


def unzip(tree_of_tuples: Any, like: Any, n: int) -> tuple[Any, ...]:
  """Splits a tree whose leaves are ``n``-tuples (the result of one fused per-leaf map) into
  ``n`` trees with the structure of ``like``."""
  treedef = jax.tree.structure(like)
  leaves = treedef.flatten_up_to(tree_of_tuples)
  return tuple(treedef.unflatten([leaf[i] for leaf in leaves]) for i in range(n))


__all__: list[str] = []
