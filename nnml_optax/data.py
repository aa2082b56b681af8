"""Mini-batches (lecture 6a), a small bundled data set, and the long-range sequence tasks.

"For large, highly redundant training sets use mini-batches", and "mini-batches need to be balanced
for classes" (lecture 6a): a random order balances them only approximately; :func:`minibatches` with
``balanced=True`` makes every batch's class counts the floor or ceiling of the batch's share of each
class. :func:`load_digits` returns scikit-learn's bundled 8x8 digits (no download) split into
train, validation and test sets, the validation set being what the lecture's "turn the learning
rate down when the error stops decreasing" is measured on.

:func:`addition`, :func:`multiplication` and :func:`memorization` generate the pathological
long-range problems of Hochreiter & Schmidhuber (1997) on which Sutskever, Martens, Dahl & Hinton
(2013, section 4) train recurrent nets with momentum, as pure, jittable functions
``(key, batch_size, T) -> (inputs, targets, mask)``; :func:`threshold_error` and
:func:`recall_error` are the paper's zero-one losses.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import _core

__all__ = [
  "addition",
  "load_digits",
  "memorization",
  "minibatches",
  "multiplication",
  "recall_error",
  "threshold_error",
]


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
  labels: np.ndarray | None = None  # balanced: the class index 0..num_classes-1 of each example
  num_classes = 0
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
      if labels is not None:  # balanced
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
  x, y = datasets.load_digits(return_X_y=True)
  x, y = np.asarray(x, np.float32), np.asarray(y, np.int32)
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


# --- the long-range problems (Hochreiter & Schmidhuber 1997; Sutskever et al. 2013, section 4) ---


def _check_sequence_args(batch_size: Any, T: Any, min_T: int) -> tuple[int, int]:
  _core.check_int("batch_size", batch_size, 1)
  _core.check_int("T", T, min_T)
  return int(batch_size), int(T)


def _marked_pair(
  key: jax.Array, batch_size: int, T: int, low: float, high: float, centre: float
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
  """Inputs ``(batch, T, 2)`` of (value - centre, marker), the two marked values, and the mask."""
  k_val, k_first, k_second = jax.random.split(key, 3)
  values = jax.random.uniform(k_val, (batch_size, T), jnp.float32, low, high)
  first = jax.random.randint(k_first, (batch_size,), 0, -(-T // 10))  # the first ceil(T/10) steps
  second = jax.random.randint(k_second, (batch_size,), T // 2, T)  # the last ceil(T/2) steps
  steps = jnp.arange(T)
  markers = ((steps == first[:, None]) | (steps == second[:, None])).astype(jnp.float32)
  rows = jnp.arange(batch_size)
  x1, x2 = values[rows, first], values[rows, second]
  inputs = jnp.stack([values - jnp.float32(centre), markers], axis=-1)
  mask = jnp.zeros((batch_size, T), jnp.float32).at[:, -1].set(1.0)
  return inputs, x1, x2, mask


def _at_last_step(target: jax.Array, T: int) -> jax.Array:
  return jnp.zeros((target.shape[0], T, 1), jnp.float32).at[:, -1, 0].set(target)


def addition(
  key: jax.Array, batch_size: int, T: int, *, centred: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""The addition problem: remember two marked numbers over ``T`` steps and output their sum.

  Each of ``batch_size`` sequences has ``T`` steps of two input channels: a value
  :math:`x_t \sim U[-1, 1]` and a marker, 1 at exactly two steps and 0 elsewhere. The first marked
  step is uniform over the first :math:`\lceil T/10 \rceil` steps, the second over the last
  :math:`\lceil T/2 \rceil`, so the first value must be held for at least :math:`0.9\,T` steps.
  The only target is at the last step, Hochreiter & Schmidhuber's (1997, experiment 4) scaled sum

  .. math::  y_T = \tfrac12 + \frac{x_{t_1} + x_{t_2}}{4} \in [0, 1],

  and a sequence counts as an error when :math:`|\hat y_T - y_T| > 0.04` (:func:`threshold_error`).
  With ``centred=True`` (Sutskever et al. 2013, section 4: inputs and targets centred) the target
  is :math:`y_T - 1/2` (values already have mean 0); the error criterion does not change. The
  sequences have a fixed length ``T`` (the originals draw it from :math:`[T, 1.1\,T]`), so a batch
  is one array. Predicting the mean target errs on a fraction :math:`1 - (1 - 0.92^2) = 0.8464`.

  Args:
    key: a JAX PRNG key.
    batch_size: sequences per batch, a Python int ``>= 1`` (static under ``jit``).
    T: sequence length, a Python int ``>= 2`` (static under ``jit``).
    centred: subtract the target's mean 1/2.

  Returns:
    ``(inputs, targets, mask)``: float32 of shapes ``(batch_size, T, 2)``, ``(batch_size, T, 1)``
    (zero except at the last step) and ``(batch_size, T)`` (1 at the last step, else 0).

  Raises:
    ValueError / TypeError: ``batch_size`` or ``T`` is not an int in range.

  Examples:
    >>> import jax
    >>> from nnml_optax.data import addition
    >>> x, y, m = addition(jax.random.key(0), 4, 80)
    >>> x.shape, y.shape, m.shape, x[..., 1].sum(axis=1).tolist()
    ((4, 80, 2), (4, 80, 1), (4, 80), [2.0, 2.0, 2.0, 2.0])

  References:
    Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation, 1997, section 5.4.
    Martens & Sutskever, "Learning recurrent neural networks with Hessian-free optimization",
    ICML 2011. Sutskever, Martens, Dahl & Hinton, ICML 2013, section 4.
  """
  batch_size, T = _check_sequence_args(batch_size, T, 2)
  _core.check_bool("centred", centred)
  inputs, x1, x2, mask = _marked_pair(key, batch_size, T, -1.0, 1.0, 0.0)
  target = (x1 + x2) / 4 + (0.0 if centred else 0.5)
  return inputs, _at_last_step(target, T), mask


def multiplication(
  key: jax.Array, batch_size: int, T: int, *, centred: bool = True
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""The multiplication problem: as :func:`addition`, with values in [0, 1] and their product.

  Values :math:`x_t \sim U[0, 1]`, markers and marked steps as in :func:`addition`; the target at
  the last step is :math:`y_T = x_{t_1} x_{t_2}` (Hochreiter & Schmidhuber 1997, experiment 5), an
  error when :math:`|\hat y_T - y_T| > 0.04`. With ``centred=True`` the value channel is
  :math:`x_t - 1/2` and the target :math:`y_T - 1/4` (its mean): Sutskever et al. (2013) find the
  centring essential for this problem. Predicting the mean target errs on a fraction 0.889.

  Args:
    key: a JAX PRNG key.
    batch_size: sequences per batch, a Python int ``>= 1`` (static under ``jit``).
    T: sequence length, a Python int ``>= 2`` (static under ``jit``).
    centred: centre the value channel (-1/2) and the target (-1/4).

  Returns:
    ``(inputs, targets, mask)`` with the shapes of :func:`addition`.

  Raises:
    ValueError / TypeError: ``batch_size`` or ``T`` is not an int in range.

  Examples:
    >>> import jax
    >>> from nnml_optax.data import multiplication
    >>> x, y, m = multiplication(jax.random.key(0), 2, 10, centred=False)
    >>> bool(((y[:, -1, 0] >= 0) & (y[:, -1, 0] <= 1)).all()), m[:, -1].tolist()
    (True, [1.0, 1.0])

  References:
    Hochreiter & Schmidhuber, "Long short-term memory", 1997, section 5.5.
    Sutskever, Martens, Dahl & Hinton, ICML 2013, section 4.
  """
  batch_size, T = _check_sequence_args(batch_size, T, 2)
  _core.check_bool("centred", centred)
  centre = 0.5 if centred else 0.0
  inputs, x1, x2, mask = _marked_pair(key, batch_size, T, 0.0, 1.0, centre)
  target = x1 * x2 - (0.25 if centred else 0.0)
  return inputs, _at_last_step(target, T), mask


def memorization(
  key: jax.Array, batch_size: int, T: int, *, length: int = 5, num_symbols: int = 2
) -> tuple[jax.Array, jax.Array, jax.Array]:
  r"""The noiseless memorization problem: see a pattern, wait ``T`` steps, then recall it.

  Each sequence is ``length + T + length`` steps of one-hot inputs over ``num_symbols + 2``
  channels (the symbols, then *blank*, then *go*): a random pattern of ``length`` symbols drawn
  uniformly from ``num_symbols``, then ``T`` steps of delay whose last one is *go* (all others
  blank), then ``length`` blank steps during which the net must output the pattern, one symbol a
  step (Hochreiter & Schmidhuber 1997, experiment 2-style; Martens & Sutskever 2011). The
  targets are the pattern's symbols at the recall steps, the only steps the mask selects; the
  zero-one loss is the fraction of recall steps whose most likely symbol is wrong
  (:func:`recall_error`); Sutskever et al.'s Table 5 counts wrong steps per sequence, this
  fraction times ``length``. The "5-bit" problem is ``length=5, num_symbols=2``; Table 5's
  biases-only loss of 8 on the "20-bit" problem fits ``length=10, num_symbols=5``
  (10 x (1 - 1/5) = 8), an inference, not a stated definition.

  Args:
    key: a JAX PRNG key.
    batch_size: sequences per batch, a Python int ``>= 1`` (static under ``jit``).
    T: the delay between the last pattern step and the first recall step, an int ``>= 1``.
    length: symbols in the pattern, an int ``>= 1``.
    num_symbols: alphabet size, an int ``>= 2``.

  Returns:
    ``(inputs, targets, mask)``: float32 ``(batch_size, L, num_symbols + 2)``, int32
    ``(batch_size, L)`` (the symbol to recall, 0 outside recall steps) and float32
    ``(batch_size, L)`` (1 at the ``length`` recall steps), with ``L = T + 2 * length``.

  Raises:
    ValueError / TypeError: an argument is not an int in range.

  Examples:
    >>> import jax
    >>> from nnml_optax.data import memorization
    >>> x, y, m = memorization(jax.random.key(0), 3, 20)
    >>> x.shape, y.shape, m.sum(axis=1).tolist()
    ((3, 30, 4), (3, 30), [5.0, 5.0, 5.0])

  References:
    Hochreiter & Schmidhuber, "Long short-term memory", 1997.
    Martens & Sutskever, "Learning recurrent neural networks with Hessian-free optimization",
    ICML 2011. Sutskever, Martens, Dahl & Hinton, ICML 2013, section 4.
  """
  batch_size, T = _check_sequence_args(batch_size, T, 1)
  _core.check_int("length", length, 1)
  _core.check_int("num_symbols", num_symbols, 2)
  length, num_symbols = int(length), int(num_symbols)
  steps = T + 2 * length
  blank, go = num_symbols, num_symbols + 1
  pattern = jax.random.randint(key, (batch_size, length), 0, num_symbols, jnp.int32)
  symbols = jnp.full((batch_size, steps), blank, jnp.int32)
  symbols = symbols.at[:, :length].set(pattern).at[:, length + T - 1].set(go)
  inputs = jax.nn.one_hot(symbols, num_symbols + 2, dtype=jnp.float32)
  targets = jnp.zeros((batch_size, steps), jnp.int32).at[:, length + T :].set(pattern)
  mask = jnp.zeros((batch_size, steps), jnp.float32).at[:, length + T :].set(1.0)
  return inputs, targets, mask


def threshold_error(
  predictions: jax.Array, targets: jax.Array, mask: jax.Array, threshold: float = 0.04
) -> jax.Array:
  r"""Fraction of sequences with an absolute error above ``threshold`` at a masked step.

  .. math::  \frac1B \sum_b \mathbb 1\!\left[\max_{t:\,m_{bt}=1} |\hat y_{bt} - y_{bt}|
    > \text{threshold}\right]

  The zero-one loss of the addition and multiplication problems (threshold 0.04; Hochreiter &
  Schmidhuber 1997; Sutskever et al. 2013, Table 5).

  Args:
    predictions: ``(batch, T)`` or ``(batch, T, 1)``, the net's outputs.
    targets: the same shape, from :func:`addition` or :func:`multiplication`.
    mask: ``(batch, T)``, 1 where the output is scored.
    threshold: the largest absolute error that counts as right, a float ``> 0``.

  Returns:
    A float32 scalar in [0, 1]; a NaN prediction counts as an error.

  Examples:
    >>> import jax.numpy as jnp
    >>> from nnml_optax.data import threshold_error
    >>> m = jnp.array([[0.0, 1.0], [0.0, 1.0]])
    >>> float(threshold_error(jnp.array([[9.0, 0.5], [0.0, 0.3]]), jnp.array([[0, 0.52], [0, 0.4]]), m))
    0.5
  """
  _core.check_range("threshold", threshold, 0.0, None, lo_open=True, schedule=False)
  predictions, targets = jnp.asarray(predictions), jnp.asarray(targets)
  if predictions.ndim == 3:
    predictions = predictions[..., 0]
  if targets.ndim == 3:
    targets = targets[..., 0]
  # "not within": a NaN prediction (a diverged net) counts as wrong, not as right.
  wrong = ~(jnp.abs(predictions - targets) <= threshold) & (jnp.asarray(mask) > 0)
  return wrong.any(axis=1).mean(dtype=jnp.float32)


def recall_error(logits: jax.Array, targets: jax.Array, mask: jax.Array) -> jax.Array:
  r"""Fraction of masked steps whose most likely symbol is not the target (memorization).

  .. math::  \frac{\sum_{bt} m_{bt}\, \mathbb 1[\operatorname{argmax}_k \hat z_{btk} \ne y_{bt}]}{\sum_{bt} m_{bt}}

  Args:
    logits: ``(batch, T, num_symbols)``, the net's scores.
    targets: ``(batch, T)`` int symbols, from :func:`memorization`.
    mask: ``(batch, T)``, 1 at the recall steps.

  Returns:
    A float32 scalar in [0, 1] (multiply by ``length`` for Table 5's wrong steps per sequence); a
    step with a non-finite score counts as wrong.

  Examples:
    >>> import jax.numpy as jnp
    >>> from nnml_optax.data import recall_error
    >>> z = jnp.array([[[2.0, 0.0], [2.0, 0.0]]])
    >>> float(recall_error(z, jnp.array([[0, 1]]), jnp.array([[1.0, 1.0]])))
    0.5
  """
  mask = jnp.asarray(mask, jnp.float32)
  logits = jnp.asarray(logits)
  wrong = (jnp.argmax(logits, axis=-1) != targets) | ~jnp.isfinite(logits).all(axis=-1)
  wrong = wrong.astype(jnp.float32)
  return (wrong * mask).sum() / mask.sum()
