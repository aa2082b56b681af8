"""Tests of nnml_optax.preprocessing (lecture 6b: shift, scale, decorrelate)."""

import tracemalloc

import hypothesis
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax
from nnml_optax import preprocessing
from nnml_optax.preprocessing import Whitening, fit_whitening, unwhiten, whiten

from references import preprocessing as ref

METHODS = ("center", "standardize", "pca", "zca")


def correlated(n=400, seed=0):
  """Correlated, badly scaled inputs with a non-zero mean (float64)."""
  rng = np.random.default_rng(seed)
  mix = np.array([[1.0, 0.9, 0.0], [0.0, 0.3, 0.2], [0.0, 0.0, 1.0]])
  return 5.0 + rng.standard_normal((n, 3)) @ mix * np.array([1.0, 10.0, 0.1])


# --- the lecture's examples ---------------------------------------------------------------------


def test_lecture_shift_example_condition_number_drops_to_one():
  # Lecture 6b: a linear neuron with cases (101, 101) -> 2 and (101, 99) -> 0 has a very elongated
  # error surface; subtracting 100 from every component gives (1, 1), (1, -1) and a circular one.
  lecture = np.array([[101.0, 101.0], [101.0, 99.0]])
  raw = ref.condition_number(ref.hessian_linear_neuron(lecture))
  assert raw > 1e4  # the elongated ellipse: about 4.1e4
  # The lecture's shift is "subtract the mean over the training set": a training set around
  # (100, 100), such as the lecture's cases and their mirror images. (The two cases alone have mean
  # (101, 100): centering them makes the first input constant 0, which is why they are not used
  # as the training set here.)
  train = np.array([[101.0, 101.0], [101.0, 99.0], [99.0, 101.0], [99.0, 99.0]])
  params = fit_whitening(train, method="center")
  np.testing.assert_array_equal(params.mean, [100.0, 100.0])
  shifted = np.asarray(whiten(params, lecture))
  np.testing.assert_array_equal(shifted, [[1.0, 1.0], [1.0, -1.0]])
  assert ref.condition_number(ref.hessian_linear_neuron(shifted)) == 1.0
  assert ref.condition_number(ref.hessian_linear_neuron(train)) > 2e4
  centered = np.asarray(whiten(params, train))
  assert ref.condition_number(ref.hessian_linear_neuron(centered)) == 1.0


def test_lecture_scale_example_condition_number_drops_to_one():
  # Lecture 6b: components of sizes 0.1 and 10 stretch the surface; unit variance makes it round.
  x = np.array([[0.1, 10.0], [0.1, -10.0], [-0.1, 10.0], [-0.1, -10.0]])
  assert ref.condition_number(ref.hessian_linear_neuron(x)) == pytest.approx(1e4)
  with jax.enable_x64(True):
    z = np.asarray(whiten(fit_whitening(x, method="standardize", eps=0.0), x))
  assert ref.condition_number(ref.hessian_linear_neuron(z)) == pytest.approx(1.0, abs=1e-12)


def test_pca_whitened_covariance_is_identity_up_to_eps_shrinkage():
  x = correlated()
  eps = 1e-5
  with jax.enable_x64(True):
    params = fit_whitening(x, method="pca", eps=eps)
    z = np.asarray(whiten(params, x))
  lam = np.asarray(params.variance)
  cov = np.cov(z.T, bias=True)
  np.testing.assert_allclose(cov, np.diag(lam / (lam + eps)), atol=1e-12)
  np.testing.assert_allclose(cov, np.eye(3), atol=eps / lam.min() + 1e-12)
  assert np.abs(cov - np.eye(3)).max() > 0  # the shrinkage is really there
  # The float64 numpy reference agrees.
  fwd, _, lam_ref = ref.whitening(x, "pca", eps=eps)
  np.testing.assert_allclose(lam, lam_ref, rtol=1e-12)
  np.testing.assert_allclose(z, fwd(x), atol=1e-10)


def test_eigenvalue_scaling_is_one_over_sqrt_lambda_plus_eps():
  # Regression test for the missing square root: the covariance has eigenvalues exactly 9 and 4
  # (along the diagonals); with eps = 1 every component must be divided by sqrt(lambda + 1), not by
  # lambda + 1 nor by sqrt(lambda) + 1.
  a, b = np.sqrt(18.0), np.sqrt(8.0)
  rot = np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2.0)
  x = np.array([[a, 0.0], [-a, 0.0], [0.0, b], [0.0, -b]]) @ rot + 7.0
  with jax.enable_x64(True):
    params = fit_whitening(x, method="pca", eps=1.0)
    z = np.asarray(whiten(params, x))
    unit = np.asarray(whiten(params, 7.0 + np.asarray(params.components).T))  # mu + v_i
  np.testing.assert_allclose(params.variance, [9.0, 4.0], rtol=1e-13)
  np.testing.assert_allclose(params.scale, np.sqrt([10.0, 5.0]), rtol=1e-13)
  np.testing.assert_allclose(z.var(axis=0), [0.9, 0.8], rtol=1e-12)  # lambda / (lambda + eps)
  np.testing.assert_allclose(unit, np.diag(1.0 / np.sqrt([10.0, 5.0])), atol=1e-13)


@pytest.mark.slow
def test_gradient_descent_needs_ten_times_fewer_steps_after_pca_whitening():
  # Lecture 6b: on a linear neuron with correlated, badly scaled inputs, PCA whitening turns the
  # ellipse into a circle. Gradient descent with the best fixed learning rate for each (1 / largest
  # Hessian eigenvalue) must reach the same target loss in at least 10x fewer steps.
  rng = np.random.default_rng(0)
  n = 512
  mix = np.array([[1.0, 0.9, 0.0, 0.0], [0.0, 0.3, 0.0, 0.0], [0.0, 0.0, 1.0, 0.5], [0, 0, 0, 1.0]])
  x = 2.0 + rng.standard_normal((n, 4)) @ mix * np.array([1.0, 3.0, 0.3, 10.0])
  t = x @ np.array([1.0, -2.0, 0.5, 0.1]) + 0.3 + 0.1 * rng.standard_normal(n)

  def steps_to_target(inputs, cap=20_000):
    xa = np.concatenate([inputs, np.ones((n, 1))], axis=1)  # a bias input
    lam = np.linalg.eigvalsh(xa.T @ xa / n)
    best = np.linalg.lstsq(xa, t, rcond=None)[0]
    l_star, l_0 = 0.5 * np.mean((xa @ best - t) ** 2), 0.5 * np.mean(t**2)
    target = l_star + 1e-3 * (l_0 - l_star)
    xj, tj = jnp.asarray(xa), jnp.asarray(t)

    def loss(w):
      return 0.5 * jnp.mean((xj @ w - tj) ** 2)

    tx = nnml_optax.sgd(1.0 / lam.max())
    w0 = jnp.zeros(xa.shape[1])

    def body(carry):
      w, state, k = carry
      updates, state = tx.update(jax.grad(loss)(w), state)
      return optax.apply_updates(w, updates), state, k + 1

    def cond(carry):
      return (loss(carry[0]) > target) & (carry[2] < cap)

    _, _, k = jax.jit(lambda: jax.lax.while_loop(cond, body, (w0, tx.init(w0), 0)))()
    return int(k), lam.max() / lam.min()

  with jax.enable_x64(True):
    raw_steps, raw_cond = steps_to_target(x)
    z = np.asarray(whiten(fit_whitening(x, method="pca"), x))
    white_steps, white_cond = steps_to_target(z)
  assert raw_cond > 1e3 and white_cond < 1.01
  assert white_steps >= 1 and raw_steps < 20_000  # both really reach the target
  assert 10 * white_steps <= raw_steps, (raw_steps, white_steps)


# --- fit / whiten / unwhiten against the float64 reference ---------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_matches_reference_and_round_trips_float64(method):
  x = correlated()
  x_new = correlated(n=20, seed=1)
  with jax.enable_x64(True):
    params = fit_whitening(x, method=method, eps=1e-3)
    z = np.asarray(whiten(params, x_new))
    back = np.asarray(unwhiten(params, whiten(params, x_new)))
    assert z.dtype == np.float64 and params.mean.dtype == jnp.float64
  fwd, _, var = ref.whitening(x, method, eps=1e-3)
  np.testing.assert_allclose(z, fwd(x_new), rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(params.variance, var, rtol=1e-10)
  np.testing.assert_allclose(back, x_new, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
def test_round_trip_float32(method):
  x = jnp.asarray(correlated(), jnp.float32)
  params = fit_whitening(x, method=method)
  z = whiten(params, x)
  assert z.dtype == jnp.float32 and params.mean.dtype == jnp.float32
  np.testing.assert_allclose(unwhiten(params, z), x, rtol=1e-4, atol=1e-4)
  assert z.shape == x.shape


def test_pca_keep_count_and_fraction_and_projection():
  x = correlated()
  with jax.enable_x64(True):
    full = fit_whitening(x, method="pca")
    lam = np.asarray(full.variance)
    ratio = np.cumsum(lam) / lam.sum()
    two = fit_whitening(x, method="pca", keep=2)
    frac = fit_whitening(x, method="pca", keep=float(ratio[1]) - 1e-9)
    just_over = fit_whitening(x, method="pca", keep=float(ratio[1]) + 1e-9)
    z = np.asarray(whiten(two, x))
    back = np.asarray(unwhiten(two, z))
  assert z.shape == (400, 2)
  assert frac.components.shape == (3, 2) and just_over.components.shape == (3, 3)
  np.testing.assert_allclose(two.variance, lam[:2], rtol=1e-12)
  fwd, inv, _ = ref.whitening(x, "pca", keep=2)
  np.testing.assert_allclose(z, fwd(x), atol=1e-10)
  # Dropping components: unwhiten gives the best rank-2 reconstruction mu + V2 V2^T (x - mu).
  v = np.asarray(two.components)
  mu = x.mean(axis=0)
  np.testing.assert_allclose(back, mu + (x - mu) @ v @ v.T, atol=1e-10)
  np.testing.assert_allclose(back, inv(fwd(x)), atol=1e-10)


def test_zca_is_symmetric_whitening_close_to_the_input():
  x = correlated()
  with jax.enable_x64(True):
    params = fit_whitening(x, method="zca", eps=0.0)
    z = np.asarray(whiten(params, x))
  v, s = np.asarray(params.components), np.asarray(params.scale)
  w = v @ np.diag(1 / s) @ v.T
  np.testing.assert_allclose(w, w.T, atol=1e-12)
  np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(3), atol=1e-10)


def test_standardize_and_center_statistics():
  x = correlated()
  with jax.enable_x64(True):
    zs = np.asarray(whiten(fit_whitening(x, method="standardize", eps=0.0), x))
    zc = np.asarray(whiten(fit_whitening(x, method="center"), x))
  np.testing.assert_allclose(zs.mean(axis=0), 0.0, atol=1e-12)
  np.testing.assert_allclose(zs.std(axis=0), 1.0, rtol=1e-12)
  np.testing.assert_allclose(zc.mean(axis=0), 0.0, atol=1e-12)
  np.testing.assert_allclose(zc, x - x.mean(axis=0), atol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 64, 400, 10_000])
def test_chunked_statistics_equal_unchunked(chunk_size):
  # 400 rows: chunks that do not divide n exercise the clamped, masked last chunk.
  x = correlated()
  with jax.enable_x64(True):
    params = fit_whitening(x, method="pca", chunk_size=chunk_size)
  np.testing.assert_allclose(params.mean, x.mean(axis=0), rtol=1e-13)
  np.testing.assert_allclose(params.variance, ref.whitening(x, "pca")[2], rtol=1e-11)


def test_statistics_are_accumulated_chunk_by_chunk(monkeypatch):
  # Two passes over chunk-sized slices of x, every row counted once in each.
  seen = []
  inner = preprocessing._row_chunks

  def spy(x, chunk):
    for xc in inner(x, chunk):
      seen.append(xc.shape)
      yield xc

  monkeypatch.setattr(preprocessing, "_row_chunks", spy)
  x = correlated(n=1000).astype(np.float32)
  params = fit_whitening(x, method="pca", chunk_size=64)
  assert len(seen) == 2 * 16 and sum(rows for rows, _ in seen) == 2 * 1000
  assert max(rows for rows, _ in seen) == 64
  np.testing.assert_allclose(params.variance, ref.whitening(x, "pca")[2], rtol=1e-4)


def test_fit_memory_is_a_few_chunks_not_a_copy_of_x():
  # 20,000 x 200 float32 (16 MB; a float64 copy would be 32 MB) in chunks of 1,000 rows: the
  # fit's peak NumPy allocation is a few float64 chunks (1.6 MB each) and the covariance.
  x = np.random.default_rng(0).standard_normal((20_000, 200)).astype(np.float32)
  tracemalloc.start()
  try:
    fit_whitening(x, method="pca", chunk_size=1_000)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert peak < 8e6, peak


# --- exact statistics whatever the offset and the row count ---------------------------------------

OFFSETS = [0.0, 14.62, 10000.3, -3.0e5]


@pytest.mark.parametrize("n", [10, 1_000, 100_000])
@pytest.mark.parametrize("offset", OFFSETS)
def test_mean_within_two_ulp_and_variance_within_1e_6_of_float64(n, offset):
  rng = np.random.default_rng(n)
  x = (offset + rng.standard_normal((n, 3)) * [1.0, 0.5, 1e3]).astype(np.float32)
  x64 = x.astype(np.float64)
  for method in ("center", "standardize"):
    params = fit_whitening(x, method=method)
    assert params.mean.dtype == jnp.float32
    ulp = np.spacing(np.abs(x64.mean(axis=0)).astype(np.float32)).astype(np.float64)
    assert np.all(np.abs(np.asarray(params.mean, np.float64) - x64.mean(axis=0)) <= 2 * ulp)
    np.testing.assert_allclose(params.variance, x64.var(axis=0), rtol=1e-6)
  pca = fit_whitening(x, method="pca", keep=min(3, n - 1))
  lam = np.linalg.eigvalsh(np.cov(x64.T, bias=True))[::-1][: pca.variance.shape[0]]
  # Eigenvalues are determined to about eps64 x the largest one, whichever solver computes them.
  np.testing.assert_allclose(pca.variance, lam, rtol=1e-6, atol=1e-12 * lam[0])


@pytest.mark.parametrize("method", ["center", "standardize", "pca", "zca"])
@pytest.mark.parametrize("value", [14.62, 10000.3, 0.1, -7.0])
def test_constant_columns_map_to_exactly_zero(method, value):
  rng = np.random.default_rng(1)
  x = rng.standard_normal((100_000, 3)).astype(np.float32) * 5 + 2
  x[:, 1] = np.float32(value)
  params = fit_whitening(x, method=method)
  z = np.asarray(whiten(params, x))
  assert np.all(np.isfinite(z))
  if method in ("center", "standardize", "zca"):
    np.testing.assert_array_equal(z[:, 1], 0.0)
  else:  # pca: the constant column's own component is 0, and it leaks into no other one
    zero = np.flatnonzero(np.asarray(params.variance) == 0)
    assert zero.size == 1
    np.testing.assert_array_equal(z[:, zero[0]], 0.0)
    np.testing.assert_array_equal(np.asarray(params.components)[1, np.arange(3) != zero[0]], 0.0)


@pytest.mark.parametrize("method", ["standardize", "pca", "zca"])
def test_zero_variance_is_judged_relative_to_the_column(method):
  # Ten rows of 0.1 (variance exactly 0) and a column of 10000.3 jittering by one ulp: both are
  # constant at their own resolution, so eps=0 is refused instead of dividing noise by ~0.
  x = np.random.default_rng(2).standard_normal((10, 3)).astype(np.float32)
  x[:, 0] = np.float32(0.1)
  with pytest.raises(ValueError, match="eps > 0"):
    fit_whitening(x[:, :2], method=method, eps=0.0)
  base = np.float32(10000.3)
  x[:, 0] = np.where(np.arange(10) % 2, base, np.nextafter(base, np.float32(np.inf)))
  with pytest.raises(ValueError, match="eps > 0"):
    fit_whitening(x[:, :2], method=method, eps=0.0)


def test_dtypes_integer_and_bfloat16_inputs():
  x = np.random.default_rng(0).integers(0, 256, (300, 5)).astype(np.uint8)
  params = fit_whitening(x, method="standardize")
  assert params.mean.dtype == jnp.float32
  z = whiten(params, x)
  assert z.dtype == jnp.float32
  np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-4)
  xb = jnp.asarray(correlated(), jnp.bfloat16)
  pb = fit_whitening(xb, method="pca")
  assert pb.components.dtype == jnp.float32  # statistics in float32 at least
  zb = whiten(pb, xb)
  assert zb.dtype == jnp.bfloat16
  assert unwhiten(pb, zb).dtype == jnp.bfloat16


def test_pure_jittable_pytree():
  x = jnp.asarray(correlated(), jnp.float32)
  params = fit_whitening(x, method="pca", keep=2)
  leaves, treedef = jax.tree.flatten(params)
  assert len(leaves) == 4 and isinstance(jax.tree.unflatten(treedef, leaves), Whitening)
  assert len(jax.tree.leaves(fit_whitening(x, method="center"))) == 3
  step = jax.jit(lambda p, a: jnp.sum(whiten(p, a) ** 2))
  np.testing.assert_allclose(step(params, x), jnp.sum(whiten(params, x) ** 2), rtol=1e-6)
  batched = jax.vmap(lambda a: whiten(params, a))(x[:10])
  np.testing.assert_allclose(batched, whiten(params, x[:10]), rtol=1e-6, atol=1e-6)
  images = x[:12].reshape(3, 4, 3)  # any leading axes
  assert whiten(params, images).shape == (3, 4, 2)


def test_deterministic_eigenvector_signs():
  x = correlated()
  params = fit_whitening(x, method="pca")
  v = np.asarray(params.components)
  assert (v[np.abs(v).argmax(axis=0), np.arange(3)] > 0).all()


def test_exported_as_namespace():
  assert nnml_optax.preprocessing is preprocessing
  assert set(preprocessing.__all__) == {"Whitening", "fit_whitening", "unwhiten", "whiten"}


# --- properties ----------------------------------------------------------------------------------


@hypothesis.settings(max_examples=200)
@hypothesis.given(
  seed=st.integers(0, 2**31 - 1),
  log_scales=st.lists(st.floats(-2.0, 2.0), min_size=3, max_size=3),
  method=st.sampled_from(METHODS),
)
def test_property_round_trip_and_whitened_covariance(seed, log_scales, method):
  rng = np.random.default_rng(seed)
  x = (rng.standard_normal((40, 3)) @ rng.standard_normal((3, 3))) * 10.0 ** np.array(log_scales)
  x = x + rng.standard_normal(3) * 10.0
  eps = 1e-6
  with jax.enable_x64(True):
    params = fit_whitening(x, method=method, eps=eps)
    z = np.asarray(whiten(params, x))
    back = np.asarray(unwhiten(params, z))
  np.testing.assert_allclose(back, x, rtol=1e-8, atol=1e-8 * np.abs(x).max())
  np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-8 * max(1.0, np.abs(z).max()))
  if method in ("pca", "zca"):
    lam = np.asarray(params.variance)
    shrunk = lam / (lam + eps)
    cov = np.cov(z.T, bias=True)
    expected = np.diag(shrunk) if method == "pca" else None
    if method == "zca":
      v = np.asarray(params.components)
      expected = v @ np.diag(shrunk) @ v.T
    np.testing.assert_allclose(cov, expected, atol=1e-7)


# --- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
  ("kwargs", "error", "match"),
  [
    ({"method": "whiten"}, ValueError, "method"),
    ({"method": "pca", "keep": 0}, ValueError, "keep"),
    ({"method": "pca", "keep": 4}, ValueError, "keep"),
    ({"method": "pca", "keep": 0.0}, ValueError, "keep"),
    ({"method": "pca", "keep": 1.5}, ValueError, "keep"),
    ({"method": "pca", "keep": -0.2}, ValueError, "keep"),
    ({"method": "pca", "keep": float("nan")}, ValueError, "keep"),
    ({"method": "pca", "keep": True}, TypeError, "keep"),
    ({"method": "pca", "keep": "all"}, TypeError, "keep"),
    ({"method": "standardize", "keep": 2}, ValueError, "keep"),
    ({"method": "zca", "keep": 2}, ValueError, "keep"),
    ({"eps": -1e-3}, ValueError, "eps"),
    ({"eps": float("inf")}, ValueError, "eps"),
    ({"chunk_size": 0}, ValueError, "chunk_size"),
  ],
)
def test_bad_arguments(kwargs, error, match):
  with pytest.raises(error, match=match):
    fit_whitening(correlated(n=50), **kwargs)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x_is_an_error(bad):
  x = correlated(n=50)
  x[17, 1] = bad
  with pytest.raises(ValueError, match="x contains NaN or infinity"):
    fit_whitening(x, method="pca")


def test_too_few_rows_for_pca_and_zca():
  x = np.random.default_rng(0).standard_normal((5, 8))  # fewer rows than columns: rank <= 4
  with pytest.raises(ValueError, match=r"x has 5 rows.*rank at most 4.*keep <= n - 1"):
    fit_whitening(x, method="pca")
  with pytest.raises(ValueError, match=r"x has 5 rows.*rank at most 4"):
    fit_whitening(x, method="zca")
  with pytest.raises(ValueError, match="x has 3 rows"):
    fit_whitening(x[:3], method="pca", keep=3)
  params = fit_whitening(x, method="pca", keep=4)  # documented: enough rows for 4 components
  z = np.asarray(whiten(params, x))
  np.testing.assert_allclose(np.cov(z.T, bias=True), np.eye(4), atol=1e-3)
  fit_whitening(x, method="standardize")  # per-feature statistics need only 2 rows
  with pytest.raises(ValueError, match="at least 2 rows"):
    fit_whitening(x[:1], method="standardize")
  fit_whitening(x[:1], method="center")


def test_shapes_and_types_of_x():
  with pytest.raises(ValueError, match="x must be two-dimensional"):
    fit_whitening(np.zeros(10))
  with pytest.raises(ValueError, match="x must be two-dimensional"):
    fit_whitening(np.zeros((4, 2, 2)))
  with pytest.raises(TypeError, match="x must be real"):
    fit_whitening(np.ones((4, 2), np.complex64))
  params = fit_whitening(correlated(n=50), method="pca", keep=2)
  with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\)"):
    whiten(params, np.zeros((4, 2)))
  with pytest.raises(ValueError, match=r"z must have shape \(\.\.\., 2\)"):
    unwhiten(params, np.zeros((4, 3)))


def test_zero_variance_needs_eps():
  x = correlated(n=50)
  x[:, 1] = 3.0  # a constant input
  with pytest.raises(ValueError, match="eps > 0"):
    fit_whitening(x, method="standardize", eps=0.0)
  with pytest.raises(ValueError, match="eps > 0"):
    fit_whitening(x, method="pca", eps=0.0)
  z = np.asarray(whiten(fit_whitening(x, method="standardize", eps=1e-5), x))
  np.testing.assert_array_equal(z[:, 1], 0.0)  # documented: constant inputs map to 0
  fit_whitening(x, method="pca", keep=2, eps=0.0)  # dropping the dead direction is fine
