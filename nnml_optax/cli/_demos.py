"""The lecture's demonstrations behind ``nnml-optax demo NAME`` (each prints numbers, writes a PNG).

* ``ravine``: an elongated quadratic bowl. Gradient descent sloshes across the ravine at a large
  rate and diverges above 2/lambda_max; momentum builds up speed along the floor; Nesterov, rmsprop
  and local gains (6a, 6c, 6d).
* ``rprop-minibatch``: the stream "+0.1 nine times, then -0.9": Rprop drifts, SGD stays, rmsprop
  averages (lecture 6e: "rprop does not work with mini-batches").
* ``whitening``: error-surface contours of a linear neuron before and after shifting, scaling and
  PCA whitening, with the Hessian's condition number (6b).
* ``momentum-schedule``: Sutskever's momentum schedule and its final phase on a small deep
  autoencoder (Sutskever et al. 2013, §3, Table 2). The learning rate is 0.3, the best of the grid
  (0.003, 0.01, 0.03, 0.05, 0.1, 0.3) for plain Nesterov in 1,500 updates: at a small rate the run is
  still far from its floor, and lowering the momentum from 0.99 to 0.9 cuts the effective step
  lr / (1 - mu) tenfold, so the final phase then loses (measured at 0.05: 1.427 with it, 1.386
  without); at the tuned rate the final phase lowers the error, as the paper's Table 2 reports.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

import nnml_optax as nn


def _plt():
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  return plt


def _trajectory(tx, f, x0, steps):
  x = jnp.asarray(x0, jnp.float32)
  state = tx.init(x)
  out = [np.asarray(x)]
  for _ in range(steps):
    g = jax.grad(f)(x)
    u, state = tx.update(g, state, x, value=f(x))
    x = optax.apply_updates(x, u)
    out.append(np.asarray(x))
  return np.stack(out)


def ravine(out: Path, steps: int | None = None, seed: int = 0) -> dict:
  del seed
  steps = steps or 60
  lam = np.array([1.0, 50.0])  # lambda_max = 50: gradient descent diverges above 2/50 = 0.04

  def f(x):
    return 0.5 * jnp.sum(jnp.asarray(lam, jnp.float32) * x**2)

  x0 = [-9.0, 1.0]
  runs = {
    "GD lr=0.038 (sloshes)": nn.sgd(0.038),
    "GD lr=0.041 (> 2/lambda_max: diverges)": nn.sgd(0.041),
    "momentum lr=0.01, 0.9": nn.momentum(0.01, 0.9),
    "Nesterov lr=0.01, 0.9": nn.nesterov(0.01, 0.9),
    "rmsprop lr=0.3": nn.rmsprop(0.3),
    "local gains lr=0.01": nn.local_gains(0.01),
  }
  plt = _plt()
  fig, ax = plt.subplots(figsize=(9, 4.5))
  xs, ys = np.meshgrid(np.linspace(-10, 10, 200), np.linspace(-2.5, 2.5, 200))
  ax.contour(xs, ys, 0.5 * (lam[0] * xs**2 + lam[1] * ys**2), levels=20, colors="0.8")
  numbers = {}
  for name, tx in runs.items():
    traj = _trajectory(tx, f, x0, steps)
    loss = float(f(jnp.asarray(traj[-1])))
    numbers[name] = loss
    shown = np.clip(traj, [-10, -2.5], [10, 2.5])
    ax.plot(shown[:, 0], shown[:, 1], ".-", ms=3, lw=1, label=f"{name}: loss {loss:.3g}")
    print(f"{name:42s} loss after {steps} steps: {loss:.4g}")
  ax.set_title(
    f"ravine 0.5(x^2 + 50 y^2) from (-9, 1), {steps} steps\n(iterates beyond the box are drawn at its edge)",
    fontsize=10,
  )
  ax.set_xlabel("x: the ravine's floor (curvature 1)")
  ax.set_ylabel("y: across the ravine (curvature 50)")
  ax.legend(fontsize=7, loc="lower right")
  fig.tight_layout()
  fig.savefig(out / "ravine.png", dpi=90)
  plt.close(fig)
  return numbers


def rprop_minibatch(out: Path, steps: int | None = None, seed: int = 0) -> dict:
  del seed
  cycles = max(1, (steps or 50) // 10)
  stream = np.tile(np.r_[np.full(9, 0.1), -0.9], cycles)
  runs = {
    "SGD lr=0.1": nn.sgd(0.1),
    "Rprop (iRprop-, step 0.01)": nn.rprop(0.01),
    "rmsprop lr=0.01": nn.rmsprop(0.01),
  }
  plt = _plt()
  fig, ax = plt.subplots(figsize=(8, 4))
  numbers = {}
  for name, tx in runs.items():
    w = jnp.zeros(1)
    state = tx.init(w)
    ws = [0.0]
    for g in stream:
      u, state = tx.update(jnp.asarray([g], jnp.float32), state, w)
      w = jnp.asarray(optax.apply_updates(w, u))
      ws.append(float(w[0]))
    numbers[name] = ws[-1]
    ax.plot(ws, label=f"{name}: w = {ws[-1]:.3f}")
    print(f"{name:28s} weight after {len(stream)} mini-batches (gradients sum to 0): {ws[-1]:+.4f}")
  ax.set_xlabel("mini-batch")
  ax.set_ylabel("weight")
  ax.set_title('"+0.1 nine times, then -0.9": the gradients cancel, Rprop drifts')
  ax.legend()
  fig.tight_layout()
  fig.savefig(out / "rprop-minibatch.png", dpi=90)
  plt.close(fig)
  return numbers


def _hessian(x):
  """Hessian of the mean squared error of a linear neuron y = w.x (no bias): X^T X / n."""
  return x.T @ x / len(x)


def _condition(x):
  ev = np.linalg.eigvalsh(_hessian(x))
  return float(ev[-1] / max(ev[0], 1e-300))


def whitening(out: Path, steps: int | None = None, seed: int = 0) -> dict:
  del steps
  rng = np.random.default_rng(seed)
  # the lecture's example: (101, 101) -> 2 and (101, 99) -> 0
  x = np.array([[101.0, 101.0], [101.0, 99.0]])
  y = np.array([2.0, 0.0])
  shifted = x - 100.0  # the lecture subtracts 100 from every component
  # correlated, badly scaled inputs for the scaling / PCA panels
  z = rng.normal(size=(500, 2)) @ np.array([[3.0, 0.0], [2.9, 0.4]])
  z = z * np.array([10.0, 0.1]) + 5.0
  std = np.asarray(nn.preprocessing.whiten(nn.preprocessing.fit_whitening(z, "standardize"), z))
  pca = np.asarray(nn.preprocessing.whiten(nn.preprocessing.fit_whitening(z, "pca"), z))
  panels = {
    "raw (101,101)->2, (101,99)->0": x,
    "shifted (1,1)->2, (1,-1)->0": shifted,
    "correlated, badly scaled": z,
    "scaled to unit variance": std,
    "PCA-whitened": pca,
  }
  numbers = {}
  plt = _plt()
  fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6))
  for ax, (name, data) in zip(axes, panels.items(), strict=True):
    kappa = _condition(data)
    numbers[name] = kappa
    print(f"{name:34s} Hessian condition number {kappa:12.1f}")
    h = _hessian(data)
    h = h / np.abs(h).max()
    a, b = np.meshgrid(np.linspace(-3, 3, 150), np.linspace(-3, 3, 150))
    # the error surface's quadratic form over the two weights, around its minimum
    e = h[0, 0] * a**2 + 2 * h[0, 1] * a * b + h[1, 1] * b**2
    ax.contour(a, b, e, levels=12)
    ax.set_title(f"{name}\ncond {kappa:.3g}", fontsize=9)
    ax.set_xlabel("weight w1 (offset from the minimum)")
    ax.set_ylabel("weight w2 (offset from the minimum)")
    ax.set_aspect("equal")
  fig.tight_layout()
  fig.savefig(out / "whitening.png", dpi=80)
  plt.close(fig)
  del y
  return numbers


def momentum_schedule(out: Path, steps: int | None = None, seed: int = 0) -> dict:
  from flax import nnx

  steps = steps or 1500
  (xtr, _), _, _ = nn.data.load_digits(seed=seed)
  x = jnp.asarray(xtr / 16.0)
  sizes = [64, 32, 16, 6, 16, 32, 64]

  def make():
    class AE(nnx.Module):
      def __init__(self, rngs):
        self.layers = nnx.List(
          [
            nnx.Linear(a, b, kernel_init=nn.init.sparse(15), rngs=rngs)
            for a, b in itertools.pairwise(sizes)
          ]
        )

      def __call__(self, h):
        for i, layer in enumerate(self.layers):
          h = layer(h)
          if i != len(self.layers) // 2 - 1:  # linear code layer, logistic elsewhere
            h = jax.nn.sigmoid(h)
        return h

    return AE(nnx.Rngs(seed))

  final = max(1, steps // 10)
  lr = 0.3  # the best of a grid for Nesterov without the final phase (see the module docstring)
  runs = {
    f"SGD lr={lr}": nn.sgd(lr),
    "Nesterov mu_max=0.99": nn.nesterov(
      lr, nn.schedules.sutskever_momentum(0.99, period=max(1, steps // 20))
    ),
    f"Nesterov mu_max=0.99 + final phase (last {final} updates at mu=0.9)": nn.nesterov(
      lr,
      nn.schedules.sutskever_momentum(
        0.99, period=max(1, steps // 20), total_steps=steps, final_steps=final
      ),
    ),
  }
  plt = _plt()
  fig, ax = plt.subplots(figsize=(8, 4))
  numbers = {}
  graphdef, init_params = nnx.split(make(), nnx.Param)

  def loss_fn(p, xb):
    return jnp.mean(jnp.sum((nnx.merge(graphdef, p)(xb) - xb) ** 2, axis=-1))

  training_loss = jax.jit(loss_fn)
  key = jax.random.key(seed)
  batches = jax.vmap(lambda t: jax.random.randint(jax.random.fold_in(key, t), (100,), 0, len(x)))(
    jnp.arange(steps)
  )  # update t's batch: 100 images drawn with replacement, the same for every method
  for name, tx in runs.items():
    params = init_params
    state = tx.init(params)

    @jax.jit
    def step(p, s, idx):
      loss, g = jax.value_and_grad(loss_fn)(p, x[idx])
      u, s = tx.update(g, s, p)
      return optax.apply_updates(p, u), s, loss

    curve = []
    for t in range(steps):
      params, state, _ = step(params, state, batches[t])
      if t % 10 == 0 or t == steps - 1:
        curve.append((t, float(training_loss(params, x))))
    numbers[name] = curve[-1][1]
    ts, ls = zip(*curve, strict=True)
    ax.plot(ts, ls, label=f"{name}: {curve[-1][1]:.3f}")
    print(f"{name:60s} training squared error after {steps} updates: {curve[-1][1]:.4f}")
  ax.axvline(steps - final, color="0.6", ls=":", lw=1, label="final phase starts")
  ax.set_yscale("log")
  ax.set_xlabel("update")
  ax.set_ylabel("training squared error (per image, pixels in [0, 1])")
  ax.set_title(
    f"digits autoencoder 64-32-16-6 (mirrored), sparse init, logistic units; lr {lr}", fontsize=10
  )
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out / "momentum-schedule.png", dpi=90)
  plt.close(fig)
  return numbers


_DEMOS = {
  "ravine": ravine,
  "rprop-minibatch": rprop_minibatch,
  "whitening": whitening,
  "momentum-schedule": momentum_schedule,
}


def run(name: str, out: Path, *, steps: int | None = None, seed: int = 0) -> int:
  out = Path(out)
  _DEMOS[name](out, steps=steps, seed=seed)
  print(f"wrote {out / (name + '.png')}")
  return 0
