"""Tests of nnml_optax.data (lecture 6a: mini-batches, class balance; bundled digits)."""

import itertools
import sys

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nnml_optax
from nnml_optax import data
from nnml_optax.data import load_digits, minibatches


def dataset(n=103, classes=(0.5, 0.3, 0.2), seed=0):
  rng = np.random.default_rng(seed)
  y = rng.choice(len(classes), size=n, p=classes)
  x = np.arange(n, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
  return x, y


def check_balanced(y, batches, batch_sizes):
  n = len(y)
  counts = np.bincount(y)
  for yb, size in zip(batches, batch_sizes, strict=True):
    share = size * counts / n
    got = np.bincount(yb, minlength=len(counts))
    assert len(yb) == size
    assert (np.abs(got - share) < 1).all(), (got, share)
    assert (got >= np.floor(share)).all() and (got <= np.ceil(share)).all()


# --- every example once per epoch ----------------------------------------------------------------


@pytest.mark.parametrize("balanced", [False, True])
@pytest.mark.parametrize("batch_size", [1, 10, 32, 103])
def test_every_example_once_per_epoch(balanced, batch_size):
  x, y = dataset()
  batches = list(minibatches(jax.random.key(0), x, y, batch_size, balanced=balanced))
  assert len(batches) == -(-103 // batch_size)
  seen = np.concatenate([xb[:, 0] for xb, _ in batches]).astype(int)
  np.testing.assert_array_equal(np.sort(seen), np.arange(103))
  for xb, yb in batches:  # x and y stay paired
    np.testing.assert_array_equal(y[xb[:, 0].astype(int)], yb)
  assert [len(yb) for _, yb in batches][:-1] == [batch_size] * (len(batches) - 1)
  if batch_size < 103:
    assert not np.array_equal(seen, np.arange(103))  # shuffled


def test_epochs_are_reshuffled_and_reproducible():
  x, y = dataset()
  epochs = list(minibatches(jax.random.key(0), x, y, 103, num_epochs=3))
  orders = [xb[:, 0] for xb, _ in epochs]
  assert len(orders) == 3 and not np.array_equal(orders[0], orders[1])
  for o in orders:
    np.testing.assert_array_equal(np.sort(o), np.arange(103))
  again = [xb[:, 0] for xb, _ in minibatches(jax.random.key(0), x, y, 103, num_epochs=3)]
  np.testing.assert_array_equal(orders, again)
  other = next(minibatches(jax.random.key(1), x, y, 103))[0][:, 0]
  assert not np.array_equal(orders[0], other)
  # The first epoch of a longer run is the single-epoch run.
  single = next(minibatches(jax.random.key(0), x, y, 103))[0][:, 0]
  np.testing.assert_array_equal(orders[0], single)


def test_endless_stream_and_drop_remainder():
  x, y = dataset()
  stream = minibatches(jax.random.key(0), x, y, 25, num_epochs=None, drop_remainder=True)
  batches = list(itertools.islice(stream, 40))  # 10 epochs of 4 full batches
  assert all(len(yb) == 25 for _, yb in batches)
  for e in range(10):
    ids = np.concatenate([xb[:, 0] for xb, _ in batches[4 * e : 4 * e + 4]]).astype(int)
    assert len(set(ids)) == 100  # only the 3 examples of the dropped remainder are missing
  one = list(minibatches(jax.random.key(0), x, y, 25, drop_remainder=True))
  assert len(one) == 4


def test_jax_arrays_stay_on_device_and_y_may_be_none():
  x, y = dataset()
  xb, yb = next(minibatches(jax.random.key(0), jnp.asarray(x), jnp.asarray(y), 16))
  assert isinstance(xb, jax.Array) and isinstance(yb, jax.Array) and xb.shape == (16, 2)
  xb, yb = next(minibatches(jax.random.key(0), x, None, 16))
  assert yb is None and isinstance(xb, np.ndarray)
  xb, _ = next(minibatches(jax.random.PRNGKey(0), x, None, 16))  # raw uint32 keys work too
  assert xb.shape == (16, 2)


# --- balanced -------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [7, 10, 20, 50, 99])
@pytest.mark.parametrize("drop_remainder", [False, True])
def test_balanced_counts_within_one_of_the_proportion(batch_size, drop_remainder):
  x, y = dataset(n=1000, classes=(0.55, 0.25, 0.12, 0.05, 0.03))
  batches = list(
    minibatches(jax.random.key(3), x, y, batch_size, balanced=True, drop_remainder=drop_remainder)
  )
  sizes = [len(yb) for _, yb in batches]
  check_balanced(y, [yb for _, yb in batches], sizes)
  if not drop_remainder:
    seen = np.concatenate([xb[:, 0] for xb, _ in batches]).astype(int)
    np.testing.assert_array_equal(np.sort(seen), np.arange(1000))


def test_balanced_batches_differ_from_plain_shuffling():
  # A random order only balances approximately (lecture 6a): with 10 batches of 10 from a 90:10
  # split some plain batch misses its share by more than 1, a balanced one never does.
  y = np.array([0] * 90 + [1] * 10)
  x = np.arange(100.0)[:, None]
  plain = [np.bincount(yb, minlength=2)[1] for _, yb in minibatches(jax.random.key(0), x, y, 10)]
  assert max(abs(c - 1) for c in plain) > 1
  balanced = minibatches(jax.random.key(0), x, y, 10, balanced=True)
  assert [np.bincount(yb, minlength=2)[1] for _, yb in balanced] == [1] * 10


def test_balanced_string_labels_and_randomness():
  y = np.array(["cat"] * 30 + ["dog"] * 20 + ["emu"] * 10)
  x = np.arange(60.0)[:, None]
  a = [xb[:, 0] for xb, _ in minibatches(jax.random.key(0), x, y, 12, balanced=True)]
  b = [xb[:, 0] for xb, _ in minibatches(jax.random.key(1), x, y, 12, balanced=True)]
  assert not np.array_equal(np.concatenate(a), np.concatenate(b))
  for _, yb in minibatches(jax.random.key(0), x, y, 12, balanced=True):
    assert sorted(yb.tolist()) == ["cat"] * 6 + ["dog"] * 4 + ["emu"] * 2


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  counts=st.lists(st.integers(1, 40), min_size=1, max_size=6),
  batch_frac=st.floats(0.0, 1.0),
  seed=st.integers(0, 2**31 - 1),
  drop_remainder=st.booleans(),
)
def test_property_balanced(counts, batch_frac, seed, drop_remainder):
  y = np.repeat(np.arange(len(counts)), counts)
  n = len(y)
  batch_size = max(1, min(n, round(batch_frac * n)))
  x = np.arange(n)
  batches = list(
    minibatches(
      jax.random.key(seed), x, y, batch_size, balanced=True, drop_remainder=drop_remainder
    )
  )
  sizes = [len(yb) for _, yb in batches]
  check_balanced(y, [yb for _, yb in batches], sizes)
  seen = np.concatenate([xb for xb, _ in batches]) if batches else np.zeros(0, int)
  assert len(set(seen.tolist())) == len(seen)  # never twice in an epoch
  if not drop_remainder or n % batch_size == 0:
    assert len(seen) == n
  else:
    assert len(seen) == n - n % batch_size


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("args", "kwargs", "error", "match"),
  [
    ((0,), {}, ValueError, "batch_size"),
    ((-4,), {}, ValueError, "batch_size"),
    ((104,), {}, ValueError, r"batch_size must be in \[1, 103\]"),
    ((2.5,), {}, TypeError, "batch_size"),
    ((10,), {"num_epochs": 0}, ValueError, "num_epochs"),
    ((10,), {"balanced": 1}, TypeError, "balanced"),
    ((10,), {"drop_remainder": "yes"}, TypeError, "drop_remainder"),
  ],
)
def test_bad_arguments(args, kwargs, error, match):
  x, y = dataset()
  with pytest.raises(error, match=match):
    minibatches(jax.random.key(0), x, y, *args, **kwargs)  # raised at the call, not at next()


def test_bad_data():
  x, y = dataset()
  with pytest.raises(ValueError, match="x and y must have the same length; got 103 and 102"):
    minibatches(jax.random.key(0), x, y[:-1], 10)
  with pytest.raises(ValueError, match="balanced=True needs class labels y"):
    minibatches(jax.random.key(0), x, None, 10, balanced=True)
  with pytest.raises(ValueError, match=r"balanced=True needs class labels y of shape \(n,\)"):
    minibatches(jax.random.key(0), x, np.eye(3)[y], 10, balanced=True)
  with pytest.raises(ValueError, match="at least one example"):
    minibatches(jax.random.key(0), x[:0], y[:0], 1)
  with pytest.raises(ValueError, match="x must be an array"):
    minibatches(jax.random.key(0), [1, 2, 3], None, 1)


# --- load_digits ---------------------------------------------------------------------------------


def test_load_digits_splits():
  (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = load_digits()
  assert x_tr.dtype == np.float32 and y_tr.dtype == np.int32
  assert x_tr.shape[1] == x_va.shape[1] == x_te.shape[1] == 64
  assert len(x_tr) + len(x_va) + len(x_te) == 1797
  assert len(x_va) == pytest.approx(0.2 * 1797, abs=10) and len(x_te) == len(x_va)
  assert 0.0 <= x_tr.min() and x_tr.max() == 16.0
  # Disjoint: no image appears in two splits (rows as bytes; the digits set has no duplicates
  # across splits of a permutation of distinct indices).
  rows = [{r.tobytes() for r in part} for part in (x_tr, x_va, x_te)]
  assert not (rows[0] & rows[1]) and not (rows[0] & rows[2]) and not (rows[1] & rows[2])
  # Stratified: each split keeps the class proportions.
  for part in (y_tr, y_va, y_te):
    frac = np.bincount(part, minlength=10) / len(part)
    np.testing.assert_allclose(frac, 0.1, atol=0.012)
  (x2, _), _, _ = load_digits()
  np.testing.assert_array_equal(x_tr, x2)  # reproducible
  (x3, _), _, _ = load_digits(seed=1)
  assert not np.array_equal(x_tr, x3)
  (x4, _), (x5, _), (x6, _) = load_digits(validation=0.0, test=0.5)
  assert len(x5) == 0 and len(x4) + len(x6) == 1797


def test_load_digits_bad_fractions():
  with pytest.raises(ValueError, match="validation"):
    load_digits(validation=-0.1)
  with pytest.raises(ValueError, match="test"):
    load_digits(test=1.0)
  with pytest.raises(ValueError, match=r"validation \+ test must be < 1"):
    load_digits(validation=0.6, test=0.4)


def test_load_digits_without_scikit_learn(monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn", None)
  with pytest.raises(ImportError, match=r"nnml-optax\[examples\]"):
    load_digits()


def test_exported_as_namespace():
  assert nnml_optax.data is data
  assert set(data.__all__) == {
    "addition",
    "load_digits",
    "memorization",
    "minibatches",
    "multiplication",
    "recall_error",
    "threshold_error",
  }


# --- the long-range problems (Hochreiter & Schmidhuber 1997; Sutskever et al. 2013, section 4) ---


def marked(inputs):
  """The two marked steps of every sequence, from the marker channel."""
  steps = [np.flatnonzero(row) for row in np.asarray(inputs[..., 1])]
  assert all(len(s) == 2 for s in steps)
  return np.array(steps)


@pytest.mark.parametrize("T", [2, 10, 80])
def test_addition_positions_and_targets(T):
  x, y, m = data.addition(jax.random.key(T), 500, T)
  assert x.shape == (500, T, 2) and y.shape == (500, T, 1) and m.shape == (500, T)
  assert x.dtype == y.dtype == m.dtype == jnp.float32
  x, y, m = np.asarray(x), np.asarray(y), np.asarray(m)
  pos = marked(x)
  assert (pos[:, 0] < -(-T // 10)).all() and (pos[:, 1] >= T // 2).all()  # first 10%, last half
  np.testing.assert_array_equal(m, np.eye(T)[[-1] * 500])  # scored at the last step only
  rows = np.arange(500)
  v1, v2 = x[rows, pos[:, 0], 0], x[rows, pos[:, 1], 0]
  np.testing.assert_allclose(
    y[:, -1, 0], (v1 + v2) / 4, rtol=1e-6
  )  # H&S's (x1+x2)/4 + 1/2, centred
  assert (y[:, :-1] == 0).all() and (np.abs(x[..., 0]) <= 1).all()
  _, y_raw, _ = data.addition(jax.random.key(T), 500, T, centred=False)
  np.testing.assert_allclose(np.asarray(y_raw)[:, -1, 0], y[:, -1, 0] + 0.5, rtol=1e-6)


def test_addition_hand_example():
  """A hand-checked draw: the marked values, their positions and the target."""
  x, y, _ = data.addition(jax.random.key(0), 1, 10, centred=False)
  x = np.asarray(x[0])
  (i, j) = np.flatnonzero(x[:, 1])
  assert i == 0 and 5 <= j <= 9
  assert float(y[0, -1, 0]) == pytest.approx(0.5 + (x[i, 0] + x[j, 0]) / 4)


def test_multiplication_centring_and_targets():
  x, y, _ = data.multiplication(jax.random.key(1), 20_000, 20)
  x, y = np.asarray(x), np.asarray(y)
  pos = marked(x)
  rows = np.arange(len(x))
  v1, v2 = x[rows, pos[:, 0], 0] + 0.5, x[rows, pos[:, 1], 0] + 0.5  # values centred at 1/2
  np.testing.assert_allclose(y[:, -1, 0], v1 * v2 - 0.25, atol=1e-6)  # product centred at 1/4
  assert abs(x[..., 0].mean()) < 0.005 and abs(y[:, -1, 0].mean()) < 0.005
  assert (x[..., 0] >= -0.5).all() and (x[..., 0] <= 0.5).all()
  xr, yr, _ = data.multiplication(jax.random.key(1), 20_000, 20, centred=False)
  np.testing.assert_allclose(np.asarray(xr)[..., 0], x[..., 0] + 0.5, atol=1e-6)
  assert 0.24 < float(yr[:, -1, 0].mean()) < 0.26


def test_memorization_layout():
  length, T, k = 3, 4, 5
  x, y, m = data.memorization(jax.random.key(2), 64, T, length=length, num_symbols=k)
  L = T + 2 * length
  assert x.shape == (64, L, k + 2) and y.shape == (64, L) and y.dtype == jnp.int32
  x, y, m = np.asarray(x), np.asarray(y), np.asarray(m)
  symbols = x.argmax(-1)
  assert (x.sum(-1) == 1).all()  # one-hot
  pattern = symbols[:, :length]
  assert (pattern < k).all() and len(np.unique(pattern)) == k  # all 5 symbols occur in 64 draws
  expected = np.full((64, L), k)  # blank
  expected[:, :length] = pattern
  expected[:, length + T - 1] = k + 1  # go
  np.testing.assert_array_equal(symbols, expected)
  np.testing.assert_array_equal(y[:, length + T :], pattern)
  np.testing.assert_array_equal(m, np.repeat([[0] * (length + T) + [1] * length], 64, 0))


def test_generators_are_jittable_and_pure():
  for gen in (data.addition, data.multiplication, data.memorization):
    eager = gen(jax.random.key(3), 8, 12)
    jitted = jax.jit(gen, static_argnums=(1, 2))(jax.random.key(3), 8, 12)
    for a, b in zip(eager, jitted, strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-6)  # XLA may fuse the product differently


def test_threshold_error_against_numpy():
  rng = np.random.default_rng(0)
  pred, tgt = rng.normal(0, 0.05, (200, 6, 1)), rng.normal(0, 0.05, (200, 6, 1))
  mask = np.zeros((200, 6))
  mask[:, -1] = 1
  mask[:50, 2] = 1  # some sequences scored at two steps
  ref = ((np.abs(pred - tgt)[..., 0] > 0.04) & (mask > 0)).any(axis=1).mean()
  got = data.threshold_error(jnp.asarray(pred), jnp.asarray(tgt), jnp.asarray(mask))
  assert float(got) == pytest.approx(ref, abs=1e-7)
  pred[0, -1, 0] = np.nan  # a diverged net is wrong, not right
  tgt[0, -1, 0] = pred[0, -1, 0]
  bad = data.threshold_error(jnp.asarray(pred), jnp.asarray(tgt), jnp.asarray(mask), 10.0)
  assert float(bad) == pytest.approx(1 / 200)
  with pytest.raises(ValueError, match="threshold"):
    data.threshold_error(pred, tgt, mask, 0.0)


def test_recall_error_against_numpy():
  rng = np.random.default_rng(1)
  logits, y = rng.normal(size=(30, 9, 3)), rng.integers(0, 3, (30, 9))
  mask = (rng.random((30, 9)) < 0.4).astype(np.float32)
  ref = ((logits.argmax(-1) != y) * mask).sum() / mask.sum()
  assert float(data.recall_error(logits, y, mask)) == pytest.approx(ref, abs=1e-6)
  logits[mask > 0] = np.nan
  assert float(data.recall_error(logits, y, mask)) == 1.0


def test_biases_only_baselines():
  """Predicting the mean target: 1 - (1 - 0.92^2) = 0.8464 for addition (the triangular sum)."""
  # 40,000 sequences: sampling sd about 0.0018, the tolerance is over 4 sd.
  _, y, m = data.addition(jax.random.key(4), 40_000, 4)
  assert float(data.threshold_error(jnp.zeros_like(y), y, m)) == pytest.approx(0.8464, abs=0.008)
  _, y, m = data.multiplication(jax.random.key(4), 40_000, 4)
  assert float(data.threshold_error(jnp.zeros_like(y), y, m)) == pytest.approx(0.889, abs=0.008)


@pytest.mark.parametrize(
  ("gen", "args", "error", "match"),
  [
    (data.addition, (0, 10), ValueError, "batch_size"),
    (data.addition, (4, 1), ValueError, "T"),
    (data.multiplication, (4, 2.5), TypeError, "T"),
    (data.memorization, (4, 0), ValueError, "T"),
  ],
)
def test_sequence_bad_arguments(gen, args, error, match):
  with pytest.raises(error, match=match):
    gen(jax.random.key(0), *args)
  with pytest.raises(ValueError, match="num_symbols"):
    data.memorization(jax.random.key(0), 4, 5, num_symbols=1)
