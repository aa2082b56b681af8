"""Nonlinear conjugate gradient: finite termination on quadratics (Nocedal & Wright 2006, ch. 5),
the four β formulas, restarts, and Rosenbrock / logistic regression against scipy's CG."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import nnml_optax as nn

METHODS = ("polak-ribiere+", "fletcher-reeves", "hestenes-stiefel", "dai-yuan")


def exact_linesearch() -> optax.GradientTransformationExtraArgs:
  """The exact step along ``u`` for a quadratic: η = -⟨g, u⟩ / ⟨u, H u⟩ (H u by forward-over-reverse)."""

  def init_fn(params):
    del params
    return optax.EmptyState()

  def update_fn(updates, state, params, *, value, grad, value_fn, **extra):
    del value, extra
    hu = optax.tree.conj(jax.jvp(jax.grad(value_fn), (params,), (updates,))[1])  # JAX's grad is ∇̄
    eta = -optax.tree.real(optax.tree.vdot(grad, updates)) / optax.tree.real(
      optax.tree.vdot(updates, hu)
    )
    return optax.tree.scale(eta, updates), state

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _minimize(tx, f, w0, *, tol: float, maxiter: int, ord=2):
  """Iterations until ‖∇f‖ ≤ tol, as optax's L-BFGS loop; returns (w, iterations, evaluations)."""
  state = tx.init(w0)
  has_value = optax.tree.get(state, "value") is not None
  vg = optax.value_and_grad_from_state(f) if has_value else None

  @jax.jit
  def step(w, state):
    v, g = vg(w, state=state) if has_value else jax.value_and_grad(f)(w)
    u, state = tx.update(g, state, w, value=v, grad=g, value_fn=f)
    n = optax.tree.get(state, "num_linesearch_steps")
    return optax.apply_updates(w, u), state, jnp.asarray(1 if n is None else n)

  grad_norm = jax.jit(lambda w: optax.tree.norm(jax.grad(f)(w), ord=ord))
  w, it, evals = w0, 0, 1
  while it < maxiter and float(grad_norm(w)) > tol:
    w, state, n = step(w, state)
    it, evals = it + 1, evals + int(n)
  return w, it, evals


def _quadratic(n: int, cond: float, seed: int = 1):
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(n, n)))
  a = q @ np.diag(np.logspace(0.0, np.log10(cond), n)) @ q.T
  b = rng.normal(size=n)
  return lambda w: 0.5 * w @ a @ w - b @ w


@pytest.fixture
def x64():
  with jax.enable_x64(True):
    yield


@pytest.mark.parametrize("method", METHODS)
def test_quadratic_exact_linesearch_terminates_in_n(x64, method):
  n = 10
  f = _quadratic(n, 10.0)
  tx = nn.conjugate_gradient(method=method, linesearch=exact_linesearch())
  _, it, _ = _minimize(tx, f, jnp.zeros(n), tol=1e-10, maxiter=3 * n)
  assert it <= n, f"{method}: {it} iterations for n={n}"


def test_quadratic_default_linesearch(x64):
  # the zoom search's cubic interpolation is exact on a quadratic: a few evaluations per iteration
  # (the default method only: each method compiles its own line search, about 5 s on CI)
  method = "polak-ribiere+"
  n = 10
  f = _quadratic(n, 10.0)
  _, it, evals = _minimize(
    nn.conjugate_gradient(method=method), f, jnp.zeros(n), tol=1e-10, maxiter=5 * n
  )
  assert it <= n + 3, f"{method}: {it} iterations for n={n}"
  assert evals <= 4 * (n + 3), evals


def test_steepest_descent_first_and_on_restart():
  tx = nn.scale_by_conjugate_gradient(restart_every=2)
  g1, g2, g3 = jnp.array([1.0, 2.0]), jnp.array([0.5, -0.5]), jnp.array([0.3, 0.1])
  s = tx.init(g1)
  d1, s = tx.update(g1, s)
  np.testing.assert_array_equal(d1, g1)
  d2, s = tx.update(g2, s)  # PR+: β = max(0, ⟨g2, g2 - g1⟩ / ‖g1‖²)
  beta = max(0.0, float(g2 @ (g2 - g1)) / float(g1 @ g1))
  np.testing.assert_allclose(d2, g2 + beta * d1, rtol=1e-6)
  d3, _ = tx.update(g3, s)  # count 2: restart
  np.testing.assert_array_equal(d3, g3)


@pytest.mark.parametrize("method", METHODS)
def test_beta_formulas(method):
  g0, g1 = np.array([1.0, -2.0, 0.5]), np.array([0.4, 0.3, -0.2])
  tx = nn.scale_by_conjugate_gradient(method=method)
  s = tx.init(jnp.zeros(3))
  _, s = tx.update(jnp.asarray(g0, jnp.float32), s)
  d1, _ = tx.update(jnp.asarray(g1, jnp.float32), s)
  y, p = g1 - g0, -g0  # p: the previous search direction
  beta = {
    "fletcher-reeves": g1 @ g1 / (g0 @ g0),
    "polak-ribiere+": max(0.0, g1 @ y / (g0 @ g0)),
    "hestenes-stiefel": g1 @ y / (p @ y),
    "dai-yuan": g1 @ g1 / (p @ y),
  }[method]
  want = g1 + beta * g0
  if want @ g1 <= 0:
    want = g1  # not a descent direction: restart
  np.testing.assert_allclose(d1, want, rtol=1e-6)


def test_non_descent_direction_restarts():
  # Hestenes-Stiefel after g0 = (1, 0): β = ⟨g1, y⟩ / ⟨p, y⟩ = 3 / -1 = -3 for g1 = (2, 1), so
  # d = g1 - 3 g0 = (-1, 1) and ⟨g1, d⟩ = -1: uphill, replaced by g1
  tx = nn.scale_by_conjugate_gradient(method="hestenes-stiefel")
  s = tx.init(jnp.zeros(2))
  _, s = tx.update(jnp.array([1.0, 0.0]), s)
  g1 = jnp.array([2.0, 1.0])
  d, _ = tx.update(g1, s)
  np.testing.assert_array_equal(d, g1)


def test_pytree_and_complex_match_real(x64):
  # a complex parameter is two real ones: same iterates as the real problem, through the real
  # inner product (gradients conjugated, as optax expects for complex parameters)
  a = jnp.array([3.0, 1.0, 2.0, 5.0])

  def f_real(p):
    return 0.5 * jnp.sum(a * (p["x"] - 1.0) ** 2) + jnp.sum((p["s"] - 2.0) ** 2)

  def f_cplx(p):
    z = p["z"]
    x = jnp.concatenate([z.real, z.imag])
    return 0.5 * jnp.sum(a * (x - 1.0) ** 2) + jnp.sum((p["s"] - 2.0) ** 2)

  tx = nn.conjugate_gradient(linesearch=exact_linesearch())

  @jax.jit
  def steps(pr, sr, pc, sc):
    gr = jax.grad(f_real)(pr)
    ur, sr = tx.update(gr, sr, pr, value=f_real(pr), grad=gr, value_fn=f_real)
    gc = optax.tree.conj(jax.grad(f_cplx)(pc))
    uc, sc = tx.update(gc, sc, pc, value=f_cplx(pc), grad=gc, value_fn=f_cplx)
    return optax.apply_updates(pr, ur), sr, optax.apply_updates(pc, uc), sc

  pr = {"x": jnp.zeros(4), "s": jnp.zeros(())}
  pc = {"z": jnp.zeros(2, jnp.complex128), "s": jnp.zeros(())}
  sr, sc = tx.init(pr), tx.init(pc)
  for _ in range(4):  # 4 distinct curvatures (1, 2, 3, 5): 4 exact conjugate gradient steps
    pr, sr, pc, sc = steps(pr, sr, pc, sc)
    z = pc["z"]
    np.testing.assert_allclose(np.concatenate([z.real, z.imag]), pr["x"], atol=1e-12)
    np.testing.assert_allclose(pc["s"], pr["s"], atol=1e-12)
  assert float(f_real(pr)) < 1e-20


def test_state_is_two_copies_of_the_params():
  params = {"w": jnp.zeros((30, 20)), "b": jnp.zeros(20)}
  state = nn.scale_by_conjugate_gradient().init(params)
  n = 30 * 20 + 20
  nbytes = sum(x.nbytes for x in jax.tree.leaves(state)) - state.count.nbytes
  assert nbytes == 8 * n


def test_validation():
  with pytest.raises(ValueError, match="method"):
    nn.conjugate_gradient(method="polak-ribiere")  # type: ignore[arg-type]
  with pytest.raises(ValueError, match="restart_every"):
    nn.scale_by_conjugate_gradient(restart_every=0)
  with pytest.raises(TypeError, match="restart_every"):
    nn.scale_by_conjugate_gradient(restart_every=2.5)  # type: ignore[arg-type]


# scipy.optimize.minimize(f, x0, jac=grad, method="CG") (gtol 1e-5 on max |∇f|), run once with
# scipy 1.17.1 / numpy 2.4.6 on the same f, x0 and data as below: (final loss, iterations, evaluations)
SCIPY_CG = {
  "rosenbrock": (1.878496359913396e-14, 36, 78),
  "logistic": (0.23781887461797035, 11, 30),
}


def _rosenbrock(w):
  return (1.0 - w[0]) ** 2 + 100.0 * (w[1] - w[0] ** 2) ** 2


def _logistic_problem():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(200, 10))
  w_true = rng.normal(size=10)
  y = (x @ w_true + 0.5 * rng.normal(size=200) > 0).astype(np.float64)

  def f(w):
    z = x @ w
    return jnp.mean(jnp.logaddexp(0.0, z) - y * z) + 0.5e-2 * w @ w

  return f


@pytest.mark.parametrize("problem", ["rosenbrock", "logistic"])
def test_against_scipy_cg(x64, problem):
  method = "polak-ribiere+"  # scipy's CG is Polak-Ribière
  f, w0 = {
    "rosenbrock": (_rosenbrock, jnp.array([-1.2, 1.0])),
    "logistic": (_logistic_problem(), jnp.zeros(10)),
  }[problem]
  loss, it_ref, ev_ref = SCIPY_CG[problem]
  w, it, evals = _minimize(
    nn.conjugate_gradient(method=method), f, w0, tol=1e-5, maxiter=200, ord=jnp.inf
  )
  # the same stopping rule; final loss within 1e-9 of scipy's, counts within a factor of 2
  assert abs(float(f(w)) - loss) < 1e-9, (float(f(w)), loss)
  assert it <= 2 * it_ref and evals <= 2 * ev_ref, (it, evals, it_ref, ev_ref)
