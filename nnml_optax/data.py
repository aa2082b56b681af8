"""Mini-batches (lecture 6a) and a small bundled data set to try the lecture's tricks on.

"For large, highly redundant training sets use mini-batches", and "mini-batches need to be balanced
for classes" (SPEC §1.1): a random order balances them only approximately; :func:`minibatches` with
``balanced=True`` makes every batch's class counts the floor or ceiling of the batch's share of each
class. :func:`load_digits` returns scikit-learn's bundled 8x8 digits (no download) split into
train, validation and test sets, the validation set being what the lecture's "turn the learning
rate down when the error stops decreasing" is measured on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _core

__all__ = ["load_digits", "minibatches"]


def _host_rng(key: jax.Array) -> np.random.Generator:
  """A NumPy generator seeded from a JAX key: the index bookkeeping stays on the host and never
  compiles per data size."""
  bits = np.asarray(jax.random.bits(key, (4,), jnp.uint32))
  return np.random.default_rng(bits.astype(np.uint64))


def _balanced_order(
  rng: np.random.Generator, labels: np.ndarray, num_classes: int, batch_size: int
) -> list[np.ndarray]:
  """Index batches whose count of every class is the floor or ceiling of its proportional share.

  With ``n_c`` examples of class ``c`` among ``n`` and a batch of size ``B``, the batch holds
  ``floor(B n_c / n)`` or that plus one examples of class ``c``. The "plus ones" (extras) of each
  class add up to an integer ``r_c < (number of batches)``; those of the last, partial batch are
  chosen first, the rest are dealt to the full batches by McNaughton's wrap-around rule, which gives
  every full batch the same number of extras and no batch two extras of one class. Every example
  is used exactly once.
  """
  n = labels.shape[0]
  counts = np.bincount(labels, minlength=num_classes).astype(np.int64)
  num_full, rest = divmod(n, batch_size)
  sizes = [batch_size] * num_full + ([rest] if rest else [])
  num_batches = len(sizes)
  per_batch = np.array([(b * counts) // n for b in sizes], np.int64)  # (batches, classes) floors
  has_frac = np.array([(b * counts) % n != 0 for b in sizes])

  if rest:  # the partial batch takes its extras first, from classes with a fractional share
    need = rest - int(per_batch[-1].sum())
    candidates = np.flatnonzero(has_frac[-1])
    chosen = rng.permutation(candidates)[:need]
    per_batch[-1, chosen] += 1
  if num_full:
    extras = counts - per_batch.sum(axis=0)  # r'_c <= num_full, only where the share is fractional
    order = rng.permutation(num_classes)
    slots = np.repeat(order, extras[order])
    per_batch[np.arange(slots.size) % num_full, slots] += 1
  assert (per_batch.sum(axis=0) == counts).all() and (per_batch.sum(axis=1) == sizes).all()

  # Shuffle within classes, hand out the examples, then shuffle batch order and within batches.
  by_class = np.split(np.argsort(labels, kind="stable"), np.cumsum(counts)[:-1])
  pools = [rng.permutation(members) for members in by_class]
  starts = np.concatenate([np.zeros((1, num_classes), np.int64), np.cumsum(per_batch, axis=0)])
  batches = [
    np.concatenate([pools[c][starts[i, c] : starts[i + 1, c]] for c in range(num_classes)])
    for i in range(num_batches)
  ]
  full_order = rng.permutation(num_full)
  batches = [batches[i] for i in full_order] + batches[num_full:]  # the partial batch stays last
  return [rng.permutation(b) for b in batches]


def minibatches(
  key: jax.Array,
  x: Any,
  y: Any,
  batch_size: int,
  *,
  balanced: bool = False,
  drop_remainder: bool = False,
  num_epochs: int | None = 1,
) -> Iterator[tuple[Any, Any]]:
  r"""Shuffled epochs of mini-batches ``(x[idx], y[idx])`` (lecture 6a).

  Every epoch is a fresh random order of all ``n`` examples (the order of epoch ``e`` is derived
  from ``jax.random.fold_in(key, e)``, so a run is reproducible; the shuffling itself runs in NumPy
  on the host), cut into ``ceil(n / batch_size)`` batches; every example appears exactly once per
  epoch. With ``drop_remainder=True`` the last, smaller batch is dropped, so that a jitted step
  compiles once.

  With ``balanced=True`` the batches keep the class proportions of ``y``: a batch of size :math:`B`
  holds :math:`\lfloor B n_c / n \rfloor` or :math:`\lceil B n_c / n \rceil` examples of each class
  :math:`c` (within 1 of its proportional share), still using every example exactly once per epoch;
  positions within classes, batches and orders within batches are random.

  The indexing happens on the host for NumPy inputs and on the device for JAX arrays; each batch
  has the type of ``x`` and ``y``.

  Args:
    key: a JAX PRNG key.
    x: inputs, an array with ``n`` rows.
    y: targets with ``n`` rows (class labels, shape ``(n,)``, when ``balanced``), or ``None``.
    batch_size: examples per batch, an int in ``[1, n]``.
    balanced: keep every batch's class counts within 1 of the class proportions of ``y``.
    drop_remainder: drop the last batch when it is smaller than ``batch_size``.
    num_epochs: how many epochs to yield (an int ``>= 1``), or ``None`` for an endless stream.

  Returns:
    An iterator of ``(x_batch, y_batch)`` (``y_batch`` is ``None`` when ``y`` is).

  Raises:
    ValueError: ``x`` and ``y`` have different lengths, ``x`` is empty, ``batch_size`` is not in
      ``[1, n]``, ``num_epochs < 1``, or ``balanced`` without one-dimensional labels ``y``.
    TypeError: ``batch_size`` or ``num_epochs`` is not an int, or a flag is not a bool.

  Examples:
    >>> import jax, numpy as np
    >>> from nnml_optax.data import minibatches
    >>> x, y = np.arange(10.0)[:, None], np.array([0] * 6 + [1] * 4)
    >>> for xb, yb in minibatches(jax.random.key(0), x, y, 5, balanced=True):
    ...   print(np.bincount(yb))  # 6:4 classes, 3:2 in every batch
    [3 2]
    [3 2]
  """
  _core.check_int("batch_size", batch_size, 1)
  _core.check_bool("balanced", balanced)
  _core.check_bool("drop_remainder", drop_remainder)
  if num_epochs is not None:
    _core.check_int("num_epochs", num_epochs, 1)
  if not hasattr(x, "shape") or len(x.shape) < 1:
    raise ValueError(f"x must be an array with one row per example; got {type(x).__name__}")
  n = int(x.shape[0])
  if n == 0:
    raise ValueError("x must have at least one example (row)")
  if y is not None:
    if not hasattr(y, "shape") or len(y.shape) < 1:
      raise ValueError(f"y must be an array with one row per example; got {type(y).__name__}")
    if int(y.shape[0]) != n:
      raise ValueError(f"x and y must have the same length; got {n} and {int(y.shape[0])}")
  if batch_size > n:
    raise ValueError(f"batch_size must be in [1, {n}] (the number of examples); got {batch_size}")
  labels = num_classes = None
  if balanced:
    if y is None or len(y.shape) != 1:
      shape = None if y is None else tuple(y.shape)
      raise ValueError(
        "balanced=True needs class labels y of shape (n,) (argmax one-hot targets first); got "
        f"{'None' if y is None else f'shape {shape}'}"
      )
    classes, labels = np.unique(np.asarray(y), return_inverse=True)
    labels, num_classes = labels.reshape(-1), len(classes)

  jax.random.fold_in(key, 0)  # a bad key fails here, not at the first batch

  def generate() -> Iterator[tuple[Any, Any]]:
    epoch = 0
    while num_epochs is None or epoch < num_epochs:
      rng = _host_rng(jax.random.fold_in(key, epoch))
      if balanced:
        batches = _balanced_order(rng, labels, num_classes, batch_size)
      else:
        order = rng.permutation(n)
        batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
      for idx in batches:
        if drop_remainder and idx.size < batch_size:
          continue
        yield x[idx], (None if y is None else y[idx])
      epoch += 1

  return generate()


def load_digits(
  validation: float = 0.2, test: float = 0.2, *, seed: int = 0
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
  """scikit-learn's bundled 8x8 handwritten digits, split into train / validation / test.

  1,797 images of the digits 0-9 (about 180 each), 64 pixels with integer intensities 0-16; no
  download (the data ship with scikit-learn). The split is stratified: each part keeps the class
  proportions (within one example per class). The pixels are not rescaled: fit a
  :func:`nnml_optax.preprocessing.fit_whitening` on the training part.

  Args:
    validation: fraction of the examples for the validation set, in ``[0, 1)``.
    test: fraction for the test set, in ``[0, 1)``; ``validation + test < 1``.
    seed: seed of the (NumPy) shuffle, so that the split is reproducible.

  Returns:
    ``((x_train, y_train), (x_valid, y_valid), (x_test, y_test))``: inputs float32 of shape
    ``(m, 64)``, labels int32 of shape ``(m,)``.

  Raises:
    ImportError: scikit-learn is not installed (``pip install 'nnml-optax[examples]'``).
    ValueError: a fraction is out of range.

  Examples:
    >>> from nnml_optax.data import load_digits
    >>> (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = load_digits()
    >>> x_tr.shape, x_va.shape, x_te.shape, x_tr.dtype.name
    ((1079, 64), (359, 64), (359, 64), 'float32')

  References:
    Alpaydin & Kaynak, "Optical recognition of handwritten digits", UCI repository, 1998.
  """
  _core.check_range("validation", validation, 0.0, 1.0, hi_open=True, schedule=False)
  _core.check_range("test", test, 0.0, 1.0, hi_open=True, schedule=False)
  _core.check_int("seed", seed, 0)
  if validation + test >= 1.0:
    raise ValueError(
      f"validation + test must be < 1 to leave training data; got {validation} + {test}"
    )
  try:
    from sklearn import datasets
  except ImportError as e:
    raise ImportError(
      "load_digits needs scikit-learn: install it with pip install 'nnml-optax[examples]'"
    ) from e
  bunch = datasets.load_digits()
  x = np.asarray(bunch.data, np.float32)
  y = np.asarray(bunch.target, np.int32)
  rng = np.random.default_rng(seed)
  parts: list[list[np.ndarray]] = [[], [], []]
  for c in np.unique(y):
    idx = rng.permutation(np.flatnonzero(y == c))
    n_va = math.floor(validation * idx.size + 0.5)
    n_te = math.floor(test * idx.size + 0.5)
    parts[1].append(idx[:n_va])
    parts[2].append(idx[n_va : n_va + n_te])
    parts[0].append(idx[n_va + n_te :])
  out = []
  for part in parts:
    idx = rng.permutation(np.concatenate(part))
    out.append((x[idx], y[idx]))
  return tuple(out)
