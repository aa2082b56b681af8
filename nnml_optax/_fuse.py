"""Fusing many small leaves into a few contiguous buffers, for compile time and step time.

XLA compiles one kernel (or more) per leaf of an optimizer update, so compile time grows faster than
linearly with the number of leaves (``benchmarks/scale.py`` measures it). :func:`fuse_leaves` runs
an elementwise transform on one buffer per dtype instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, cast

import jax
import jax.core
import jax.numpy as jnp
import numpy as np
import optax

from . import _core


class FuseLeavesState(NamedTuple):
  """State of :func:`fuse_leaves`.

  Attributes:
    inner_state: the wrapped transform's state, over the fused buffers.
    unfused: one int8 scalar per leaf that was left out of the buffers because it is partitioned
      over several devices, keyed by the leaf's position (``"leaf00012"``). The keys (part of the
      state's structure, so known at trace time) are how ``update`` knows the grouping under jit.
    positions: the int32 scalars 0, 1, ..., k-1 (``"pos000003"``), k the number of leaves of the
      most frequent (dtype, shape). Layout data, never changed by ``update``. In its buffer each
      leaf sits in the run of the leaves of its dtype and shape, at
      ``run_start + position * size``; the split reads the position at run time
      (``lax.dynamic_slice``), so every leaf of one shape is cut by one compiled kernel. XLA:CPU
      compiles identical kernels once, and a constant offset would make each slice distinct.
  """

  inner_state: Any
  unfused: dict[str, jax.Array]
  positions: dict[str, jax.Array]


def _key(i: int) -> str:
  return f"leaf{i:06d}"


def _partitioned(x: Any) -> bool:
  """Whether a leaf is split over several devices (so concatenating it would gather it)."""
  sharding = getattr(x, "sharding", None)
  if sharding is None or isinstance(x, jax.core.Tracer):
    return False
  try:
    return not sharding.is_fully_replicated
  except Exception:
    return True


class _Layout:
  """How a flat list of leaves maps to fused buffers (one per dtype) and left-alone leaves."""

  def __init__(self, leaves: list[Any], unfused: set[int]):
    self.n = len(leaves)
    self.unfused = sorted(unfused)
    self.shapes = [tuple(np.shape(x)) for x in leaves]
    self.sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
    # One buffer per dtype; inside it, the leaves of one shape are adjacent (a "run"), in order of
    # first appearance, so that a leaf's offset is its run's start plus its position times its size.
    runs: dict[str, dict[tuple, list[int]]] = {}
    for i, x in enumerate(leaves):
      if i not in unfused:
        runs.setdefault(jnp.dtype(x.dtype).name, {}).setdefault(self.shapes[i], []).append(i)
    self.groups: dict[str, list[int]] = {
      name: [i for run in by_shape.values() for i in run] for name, by_shape in runs.items()
    }
    self.starts: dict[int, int] = {}  # where each fused leaf starts in its buffer
    self.run_start: dict[int, int] = {}  # where its run starts
    self.position: dict[int, int] = {}  # its position in its run
    self.fits: set[int] = set()  # leaves of the buffers that int32 can index
    for name, by_shape in runs.items():
      start = 0
      fits = sum(self.sizes[i] for i in self.groups[name]) < 2**31
      for run in by_shape.values():
        for j, i in enumerate(run):
          self.starts[i], self.run_start[i], self.position[i] = start + j * self.sizes[i], start, j
          if fits and len(run) > 1:
            self.fits.add(i)
        start += len(run) * self.sizes[run[0]]

  def fuse(self, leaves: list[Any]) -> dict[str, jax.Array]:
    out: dict[str, jax.Array] = {}
    for name, idx in self.groups.items():
      out[f"fused_{name}"] = _concatenate([jnp.ravel(leaves[i]) for i in idx])
    for i in self.unfused:
      out[_key(i)] = leaves[i]
    return out

  def positions(self) -> int:
    """How many run-time positions the split reads (the longest run of one shape, 0 if none)."""
    return 1 + max((self.position[i] for i in self.fits), default=-1)

  def split(self, fused: dict[str, jax.Array], positions: dict[str, jax.Array]) -> list[Any]:
    leaves: list[Any] = [None] * self.n
    for name, idx in self.groups.items():
      buf = fused[f"fused_{name}"]
      for i in idx:
        size, start = self.sizes[i], self.starts[i]
        if i in self.fits and self.position[i] < len(positions):
          # run start and size are constants, the position a run-time value: every leaf of one
          # shape is cut by the same kernel
          pos = positions[f"pos{self.position[i]:06d}"]
          part = jax.lax.dynamic_slice(
            buf, (self.run_start[i] + pos * size,), (size,), allow_negative_indices=False
          )
        else:
          part = jax.lax.slice(buf, (start,), (start + size,))
        leaves[i] = part.reshape(self.shapes[i])
    for i in self.unfused:
      leaves[i] = fused[_key(i)]
    return leaves


def _name(tx: Any) -> str:
  """A readable name of a transform: its factory, from its update function's qualified name."""
  fn = getattr(tx, "update", None)
  qual = getattr(fn, "__qualname__", "")
  module = getattr(fn, "__module__", "") or ""
  if not qual:
    return type(tx).__name__
  return f"{module.split('.')[0]}.{qual.split('.<locals>')[0]}"


def _probe_tree(params: Any) -> dict[str, np.ndarray]:
  """A small test tree: for each (ndim, dtype) of ``params`` two leaves of shape (2, 3, 4, ...)[:ndim]
  with different magnitudes, so that a transform that reads leaf shapes (a fan-in), per-leaf
  statistics (a norm) or the tree structure (a mask) gives other numbers on the fused buffer."""
  kinds = dict.fromkeys((np.ndim(x), jnp.dtype(x.dtype)) for x in jax.tree.leaves(params))
  rng = np.random.default_rng(0)
  out = {}
  for j, (ndim, dtype) in enumerate(kinds):
    for k, scale in enumerate((1.0, 10.0)):
      shape = tuple(range(2, 2 + ndim))
      out[f"probe{j}_{k}"] = np.asarray(scale * rng.normal(size=shape) + 0.5, dtype)
  return out


_TRACED = (
  jax.errors.ConcretizationTypeError,
  jax.errors.TracerArrayConversionError,
  jax.errors.TracerBoolConversionError,
  jax.errors.TracerIntegerConversionError,
)

_PROBE_EXTRAS = ({}, {"value": 1.0}, {"value": 1.0, "grad_fn": lambda p: p})


def _probe(inner: optax.GradientTransformationExtraArgs, name: str, params: Any) -> None:
  """Refuses an inner transform whose update of a fused buffer differs from its update of the
  leaves on a small test tree (one init and update of each, eagerly, on tiny arrays)."""
  with jax.ensure_compile_time_eval():  # concrete numbers, also when init is traced
    tree = jax.tree.map(jnp.asarray, _probe_tree(params))
    leaves = jax.tree.leaves(tree)
    layout = _Layout(leaves, set())
    fused = layout.fuse(leaves)
    for extra in _PROBE_EXTRAS:  # stand-ins for the extra args the update may need
      try:
        plain, _ = inner.update(tree, inner.init(tree), tree, **extra)
        break
      except _TRACED:  # hyperparameters traced at init: nothing concrete to compare
        return
      except Exception:  # needs other extra arguments: try the next stand-ins
        continue
    else:
      raise ValueError(
        f"fuse_leaves could not check that the inner transform {name} is elementwise: its update "
        "fails on a small test tree. If it reads the tree structure (optax.masked with a mask "
        "tree, optax.multi_transform), put it outside: optax.masked(nnml_optax.fuse_leaves(tx), "
        "mask). If it needs extra arguments other than value and grad_fn and is elementwise (or "
        "global, like the bold driver), pass assume_elementwise=True"
      )
    try:
      fused_out, _ = inner.update(fused, inner.init(fused), fused, **extra)
      same = all(
        np.allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-3, atol=1e-6)
        for a, b in zip(
          jax.tree.leaves(plain),
          layout.split(cast(dict[str, jax.Array], fused_out), {}),
          strict=True,
        )
      )
    except _TRACED:
      return
    except Exception as e:  # e.g. a mask tree that does not match the fused buffers
      raise ValueError(
        f"fuse_leaves cannot wrap {name}: it does not run on the fused buffers ({type(e).__name__}: "
        f"{e}). A transform that reads the tree structure (optax.masked, optax.multi_transform) "
        "goes outside: optax.masked(nnml_optax.fuse_leaves(tx), mask)"
      ) from None
  if not same:
    raise ValueError(
      f"fuse_leaves cannot wrap {name}: its update depends on leaf shapes, per-leaf statistics "
      "or the tree structure (e.g. scale_by_fan_in, optax.masked, a per-leaf norm), so on the "
      "fused buffers it would compute other numbers. Use it unwrapped, or fuse only the "
      "elementwise part: optax.chain(nnml_optax.fuse_leaves(elementwise_tx), tx)"
    )


def fuse_leaves(
  inner: optax.GradientTransformation,
  *,
  runtime_offsets: bool = True,
  assume_elementwise: bool = False,
) -> optax.GradientTransformationExtraArgs:
  r"""Runs an elementwise transform once per dtype on contiguous buffers instead of once per leaf.

  .. math::

    \text{update}(u) = \text{split}\big(\text{inner.update}(\text{concat}_{\text{dtype}}(u))\big)

  Leaves are raveled and concatenated into one buffer per dtype, the leaves of one shape next to
  each other, so the compiled update has a handful of large kernels instead of thousands of small
  ones. For an *elementwise* inner transform (all of nnml_optax's but
  :func:`nnml_optax.scale_by_fan_in`, which reads leaf shapes; optax's ``scale_by_adam``,
  ``trace``, ``rmsprop``...) and for global ones (bold driver, reduce-on-plateau) the numbers are
  those of the unwrapped transform (bit for bit without ``jit``; a few ulp under ``jit``, where
  XLA may vectorise another buffer length differently). Unlike ``optax.flatten`` it keeps each
  leaf's dtype and sharding: a leaf partitioned over several devices stays its own leaf. Extra
  arguments are forwarded: a callable (``grad_fn``) takes and returns fused buffers, a tree shaped
  like the updates (``curvature``) is fused, anything else (``value``) is passed as it is; the
  parameters are fused only when the inner update reads them.

  Put ``optax.masked``/``optax.multi_transform`` outside the wrapper. The grouping is decided at
  ``init`` from the parameters' shardings; under ``jax.jit`` every leaf is fused. ``init`` also
  checks the inner transform once, eagerly, on a small test tree (a few leaves of at most 24
  entries): if its update of the fused buffer differs from that of the leaves (it reads leaf
  shapes, per-leaf statistics or the tree structure), it raises a ``ValueError`` instead of
  computing other numbers. (Hyperparameters that are traced at ``init``, as when
  differentiating through the construction, leave nothing concrete to compare: no check then.)

  Args:
    inner: the transform to wrap (any ``GradientTransformation``, with or without extra args).
    runtime_offsets: the leaves of one dtype and shape are adjacent in their buffer, and each is
      cut at its run's start plus its position in the run, read at run time from the state
      (``FuseLeavesState.positions``, as many int32 scalars as the most frequent shape has
      leaves), so XLA compiles one split kernel per leaf *shape* (default). ``False``: constant
      offsets, every leaf its own split kernel, for backends whose compile time does not grow
      with distinct kernels (``benchmarks/scale.py`` compares the two).
    assume_elementwise: skip the check at ``init`` (for an inner update that needs extra
      arguments other than ``value`` and ``grad_fn``, or random numbers drawn per leaf).

  Raises:
    TypeError: ``inner`` is not a ``GradientTransformation``.
    ValueError: (at ``init``) the inner transform's update depends on leaf shapes or the tree
      structure, e.g. :func:`nnml_optax.scale_by_fan_in` or ``optax.masked``.

  Returns:
    An ``optax.GradientTransformationExtraArgs`` with the same updates as ``inner``.

  Examples:
    >>> import jax.numpy as jnp, optax, nnml_optax
    >>> params = {f"b{i}": jnp.ones((3,)) for i in range(1000)}
    >>> tx = nnml_optax.fuse_leaves(nnml_optax.momentum(0.1, 0.9))
    >>> state = tx.init(params)
    >>> state.inner_state[1].velocity["fused_float32"].shape   # one buffer for 1000 leaves
    (3000,)
    >>> updates, state = tx.update(params, state)
    >>> float(updates["b7"][0])
    -0.1
  """
  if not isinstance(inner, optax.GradientTransformation):
    raise TypeError(f"inner must be an optax.GradientTransformation; got {type(inner).__name__}")
  _core.check_bool("runtime_offsets", runtime_offsets)
  _core.check_bool("assume_elementwise", assume_elementwise)
  name = _name(inner)
  inner = optax.with_extra_args_support(inner)
  checked: set[Any] = set()

  def _layout(tree, unfused: set[int]):
    leaves, treedef = jax.tree.flatten(tree)
    return leaves, treedef, _Layout(leaves, unfused)

  def init_fn(params):
    if not assume_elementwise:
      key = tuple(dict.fromkeys((np.ndim(x), jnp.dtype(x.dtype)) for x in jax.tree.leaves(params)))
      if key not in checked:
        _probe(inner, name, params)
        checked.add(key)
    leaves, _, layout = _layout(
      params, {i for i, x in enumerate(jax.tree.leaves(params)) if _partitioned(x)}
    )
    fused = layout.fuse(leaves)
    return FuseLeavesState(
      inner_state=inner.init(fused),
      unfused={_key(i): jnp.zeros([], jnp.int8) for i in layout.unfused},
      positions={f"pos{j:06d}": jnp.asarray(j, jnp.int32) for j in range(layout.positions())}
      if runtime_offsets
      else {},
    )

  reads_params: dict[Any, bool] = {}

  def update_fn(updates, state, params=None, **extra_args):
    unfused = {int(k[4:]) for k in state.unfused}
    leaves, treedef, layout = _layout(updates, unfused)
    fused_updates = layout.fuse(leaves)

    def fuse_tree(tree):
      return layout.fuse(treedef.flatten_up_to(tree))

    def unfuse(fused):
      return treedef.unflatten(layout.split(fused, state.positions))

    extra = {}
    for name, value in extra_args.items():
      if callable(value) and not isinstance(value, jax.Array):
        extra[name] = _wrap(value, fuse_tree, unfuse)
      elif _same_structure(value, treedef):
        extra[name] = fuse_tree(value)
      else:
        extra[name] = value
    # The barriers keep XLA's early simplifier from rewriting slices of the concatenation (XLA:CPU
    # removes barriers before fusion, so they do not decide what is fused or materialised).
    fused_updates = jax.lax.optimization_barrier(fused_updates)
    fused_params = None
    if params is not None:
      # Concatenating the parameters costs a copy of them every step and, on thousands of leaves,
      # a second of compile time: done only when the inner update reads them. Otherwise it gets
      # the fused updates in their place, same structure, shapes and dtypes, values never read.
      key = (
        jax.tree.structure((fused_updates, state.inner_state)),
        tuple(
          (np.shape(x), getattr(x, "dtype", type(x)))
          for x in jax.tree.leaves((fused_updates, state.inner_state))
        ),
        tuple(sorted(extra)),
      )
      if key not in reads_params:  # one extra trace per signature, also outside jit
        reads_params[key] = _reads_params(inner, fused_updates, state.inner_state, extra)
      if reads_params[key]:
        fused_params = layout.fuse(treedef.flatten_up_to(params))
      else:
        fused_params = fused_updates
    out, inner_state = inner.update(fused_updates, state.inner_state, fused_params, **extra)
    out = jax.lax.optimization_barrier(out)
    return unfuse(out), FuseLeavesState(
      inner_state=inner_state, unfused=state.unfused, positions=state.positions
    )

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


_CHUNK = 64


def _concatenate(parts: list[jax.Array]) -> jax.Array:
  """``jnp.concatenate`` in chunks of 64: XLA:CPU compiles one concatenation of thousands of
  operands in time that grows faster than linearly with them. The barrier keeps XLA's simplifier
  from merging the chunks back into one concatenation."""
  if len(parts) == 1:
    return parts[0]
  if len(parts) <= _CHUNK:
    return jnp.concatenate(parts)
  chunks = [jnp.concatenate(parts[i : i + _CHUNK]) for i in range(0, len(parts), _CHUNK)]
  return jnp.concatenate(jax.lax.optimization_barrier(chunks))


def _reads_params(inner, fused_updates, inner_state, extra) -> bool:
  """Whether ``inner.update``'s outputs can depend on the values of its ``params``.

  Traced once more on the (few, fused) buffers, with stand-ins shaped like the updates; a
  parameter counts as read when any operation of the jaxpr, or its output, takes it (including
  calls into nested jaxprs), so an unused value in dead code errs on the side of reading.
  """
  closed = jax.make_jaxpr(lambda u, s, p: inner.update(u, s, p, **extra))(
    fused_updates, inner_state, fused_updates
  )
  jaxpr = closed.jaxpr
  n_p = len(jax.tree.leaves(fused_updates))
  params_ids = {id(v) for v in jaxpr.invars[len(jaxpr.invars) - n_p :]}
  used = (v for eqn in jaxpr.eqns for v in eqn.invars)
  return any(id(v) in params_ids for v in (*used, *jaxpr.outvars))


def _wrap(fn: Callable, fuse_tree: Callable, unfuse: Callable) -> Callable:
  def wrapped(fused_params):
    return fuse_tree(fn(unfuse(fused_params)))

  return wrapped


def _same_structure(value: Any, treedef) -> bool:
  try:
    return jax.tree.structure(value) == treedef and treedef.num_leaves > 0
  except Exception:
    return False
