"""Registry entries: fuse_leaves around elementwise transforms (nnml_optax and optax)."""

import optax

import nnml_optax as nn

from . import E


def _fused_momentum(learning_rate=0.05, momentum=0.9):
  return nn.fuse_leaves(nn.momentum(learning_rate, momentum))


def _fused_optax_rmsprop(learning_rate=0.01, decay=0.9):
  return nn.fuse_leaves(optax.rmsprop(learning_rate, decay, momentum=0.9))


ENTRIES = [
  E(
    "fuse_leaves(momentum)",
    _fused_momentum,
    dict(learning_rate=0.05, momentum=0.9),
    zoo=lambda: _fused_momentum(0.001, 0.9),
    zoo_steps=6000,
  ),
  E(
    "fuse_leaves(optax.rmsprop)",
    _fused_optax_rmsprop,
    dict(learning_rate=0.01, decay=0.9),
    fixed=("decay",),  # optax.rmsprop reads decay as a float, not a schedule
    not_applicable={
      "bf16_scalar_kinds": "fuse_leaves returns its inner transform's updates, and optax.rmsprop "
      "multiplies bf16 updates by a strongly typed float32 rate into float32",
      "hyperparams": "optax.rmsprop keeps no hyperparameters in its state (optax's way to log "
      "them: optax.inject_hyperparams, tested with the other wrappers)",
    },
    # rmsprop's steps keep size ~lr, so the zoo uses a decaying rate to settle
    zoo=lambda: nn.fuse_leaves(optax.rmsprop(optax.exponential_decay(0.01, 500, 0.5), 0.9)),
    zoo_steps=6000,
  ),
]
