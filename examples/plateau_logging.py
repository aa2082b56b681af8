"""Reduce-on-plateau driven from the validation set, and every hyperparameter logged, in a Flax
NNX loop and a Flax Linen ``TrainState`` loop.

Each epoch: mini-batch steps with Nesterov momentum on Sutskever's schedule, then the validation
loss goes to ``nnml_optax.update_plateau`` (on the ``nnx.Optimizer`` in place; on the Linen
state's ``opt_state`` as a new value) and ``nnml_optax.hyperparams`` logs the learning rate, the
momentum, the plateau's scale and the effective learning rate. A third loop chains iRprop+ (full
batch, the training loss as ``value=`` every step) with the same plateau rule fed validation
losses every 5 steps: each reads only what it is asked to read.

Run: ``python examples/plateau_logging.py --epochs 20``.
"""

from __future__ import annotations

import argparse

import flax.linen as linen
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from flax.training import train_state

import nnml_optax as nn

try:
  from _common import digits
except ImportError:
  from examples._common import digits

HIDDEN = 100


def _optimizer(steps_per_epoch: int) -> optax.GradientTransformation:
  mu = nn.schedules.sutskever_momentum(0.99, period=steps_per_epoch)  # mu grows every epoch
  plateau = nn.reduce_on_plateau(0.5, patience=1, value_arg=None)  # reads only update_plateau
  return optax.chain(nn.nesterov(0.05, mu), plateau)


def _loggable(logged: dict) -> dict:
  return {k: float(v) for k, v in logged.items()}


def run_nnx(epochs: int, seed: int, batch_size: int) -> list[dict]:
  (xtr, ytr), (xva, yva), _ = digits(seed)
  model = nnx.Sequential(
    nnx.Linear(xtr.shape[1], HIDDEN, kernel_init=nn.init.fan_in(), rngs=nnx.Rngs(seed)),
    jax.nn.tanh,
    nnx.Linear(HIDDEN, 10, kernel_init=nn.init.fan_in(), rngs=nnx.Rngs(seed + 1)),
  )
  optimizer = nnx.Optimizer(model, _optimizer(len(xtr) // batch_size), wrt=nnx.Param)

  def loss_fn(model, x, y):
    return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

  @nnx.jit
  def train_step(model, optimizer, x, y):
    optimizer.update(model, nnx.grad(loss_fn)(model, x, y))

  @nnx.jit
  def end_of_epoch(model, optimizer, x, y):
    val_loss = loss_fn(model, x, y)
    nn.update_plateau(optimizer, val_loss)  # the optimizer's state, in place
    return {"val_loss": val_loss, **nn.hyperparams(optimizer)}

  log = []
  for epoch in range(epochs):
    key = jax.random.key(seed * 1000 + epoch)
    for xb, yb in nn.data.minibatches(key, xtr, ytr, batch_size, drop_remainder=True):
      train_step(model, optimizer, xb, yb)
    log.append(_loggable(end_of_epoch(model, optimizer, xva, yva)))
  return log


class _MLP(linen.Module):
  @linen.compact
  def __call__(self, x):
    x = jnp.tanh(linen.Dense(HIDDEN, kernel_init=nn.init.fan_in())(x))
    return linen.Dense(10, kernel_init=nn.init.fan_in())(x)


def run_linen(epochs: int, seed: int, batch_size: int) -> list[dict]:
  (xtr, ytr), (xva, yva), _ = digits(seed)
  module = _MLP()
  state = train_state.TrainState.create(
    apply_fn=module.apply,
    params=module.init(jax.random.key(seed), xtr[:1])["params"],
    tx=_optimizer(len(xtr) // batch_size),
  )

  def loss_fn(params, x, y):
    logits = module.apply({"params": params}, x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def train_step(state, x, y):
    return state.apply_gradients(grads=jax.grad(loss_fn)(state.params, x, y))

  @jax.jit
  def end_of_epoch(state, x, y):
    val_loss = loss_fn(state.params, x, y)
    state = state.replace(opt_state=nn.update_plateau(state.opt_state, val_loss))  # pure
    return state, {"val_loss": val_loss, **nn.hyperparams(state.opt_state)}

  log = []
  for epoch in range(epochs):
    key = jax.random.key(seed * 1000 + epoch)
    for xb, yb in nn.data.minibatches(key, xtr, ytr, batch_size, drop_remainder=True):
      state = train_step(state, xb, yb)
    state, logged = end_of_epoch(state, xva, yva)
    log.append(_loggable(logged))
  return log


def run_irprop_plus(steps: int, seed: int, every: int = 5) -> list[dict]:
  """Full-batch iRprop+ reads the training loss every step; the plateau, the validation loss
  every ``every`` steps."""
  (xtr, ytr), (xva, yva), _ = digits(seed)
  w0 = 0.01 * jax.random.normal(jax.random.key(seed), (xtr.shape[1], 10))
  params = {"w": w0, "b": jnp.zeros(10)}
  plateau = nn.reduce_on_plateau(0.5, patience=0, value_arg=None)
  tx = optax.chain(nn.rprop(0.01, variant="irprop+"), plateau)
  opt_state = tx.init(params)

  def loss_fn(p, x, y):
    logits = x @ p["w"] + p["b"]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(params, opt_state):
    loss, grads = jax.value_and_grad(loss_fn)(params, xtr, ytr)
    updates, opt_state = tx.update(grads, opt_state, params, value=loss)
    return optax.apply_updates(params, updates), opt_state

  log = []
  for t in range(steps):
    params, opt_state = step(params, opt_state)
    if (t + 1) % every == 0:
      val_loss = loss_fn(params, xva, yva)
      opt_state = nn.update_plateau(opt_state, val_loss)
      log.append(_loggable({"val_loss": val_loss, **nn.hyperparams(opt_state)}))
  return log


def main(epochs: int = 20, seed: int = 0, batch_size: int = 100, rprop_steps: int = 100) -> dict:
  return {
    "nnx": run_nnx(epochs, seed, batch_size),
    "linen": run_linen(epochs, seed, batch_size),
    "irprop+": run_irprop_plus(rprop_steps, seed),
  }


if __name__ == "__main__":
  ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
  ap.add_argument("--epochs", type=int, default=20)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--rprop-steps", type=int, default=100)
  a = ap.parse_args()
  for name, log in main(a.epochs, a.seed, rprop_steps=a.rprop_steps).items():
    print(name)
    for i, row in enumerate(log):
      keys = ("val_loss", "effective_learning_rate", "plateau_scale", "momentum")
      shown = {k.rsplit("/", 1)[-1]: v for k, v in row.items() if k.rsplit("/", 1)[-1] in keys}
      print(f"  {i:3d} " + "  ".join(f"{k} {v:.4g}" for k, v in shown.items()))
