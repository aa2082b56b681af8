"""Registry entries: rmsprop and its developments (lecture 6e; SPEC §1.8, §1.9, §6.1, §6.4, §6.8).

Zoo settings: rmsprop's step is about lr in every coordinate whatever the curvature, so it does not
converge to the exact minimum with a constant rate: it ends oscillating in a band of width ~lr
around it. The zoo therefore runs with a small rate (1e-3; 1e-4 with momentum, whose terminal step
is lr/(1-mu) = 10x larger) and enough steps to reach that band. Every entry meets the registry's
default tolerances (no tolerance is loosened).
"""

import nnml_optax as nn

from . import E


def _lr(tx_factory, **kw):
  return lambda: tx_factory(**kw)


ENTRIES = [
  E("scale_by_rms", nn.scale_by_rms, dict(decay=0.9, eps=1e-8), lr=1e-3, zoo_steps=4000),
  E(
    "scale_by_rms_eps_outside",
    nn.scale_by_rms,
    dict(decay=0.9, eps=1e-8, eps_in_sqrt=False),
    lr=1e-3,
    zoo_steps=4000,
  ),
  E(
    "scale_by_rms_centered",
    nn.scale_by_rms,
    dict(decay=0.9, eps=1e-8, centered=True),
    lr=1e-3,
    zoo_steps=4000,
  ),
  E(
    "scale_by_rms_initial_scale",
    nn.scale_by_rms,
    dict(decay=0.99, eps=1e-8, initial_scale=1.0),
    fixed=("initial_scale",),
    lr=1e-3,
    zoo_steps=4000,
  ),
  E(
    "rmsprop",
    nn.rmsprop,
    dict(learning_rate=0.01, decay=0.9, eps=1e-8),
    zoo=_lr(nn.rmsprop, learning_rate=1e-3),
    zoo_steps=4000,
  ),
  E(
    "rmsprop_centered",
    nn.rmsprop,
    dict(learning_rate=0.01, decay=0.9, centered=True),
    zoo=_lr(nn.rmsprop, learning_rate=1e-3, centered=True),
    zoo_steps=4000,
  ),
  E(
    "rmsprop_momentum",
    nn.rmsprop,
    dict(learning_rate=0.01, momentum=0.9),
    zoo=_lr(nn.rmsprop, learning_rate=1e-4, momentum=0.9),
    zoo_steps=4000,
  ),
  E(
    "rmsprop_nesterov",
    nn.rmsprop,
    dict(learning_rate=0.01, momentum=0.9, nesterov=True),
    zoo=_lr(nn.rmsprop, learning_rate=1e-4, momentum=0.9, nesterov=True),
    zoo_steps=4000,
  ),
  E(
    "rmsprop_centered_momentum",
    nn.rmsprop,
    dict(learning_rate=0.01, momentum=0.9, centered=True),
    zoo=_lr(nn.rmsprop, learning_rate=1e-4, momentum=0.9, centered=True),
    zoo_steps=4000,
  ),
  E(
    "rmsprop_torch",
    nn.rmsprop,
    dict(learning_rate=0.01, decay=0.99, convention="torch"),
    static=("convention",),
    zoo=_lr(nn.rmsprop, learning_rate=1e-3, convention="torch"),
    zoo_steps=4000,
  ),
  # torch's buffer holds the RMS-scaled gradients before the learning rate (entries ~10-30
  # here), so a one-ulp jit/no-jit difference in it exceeds test_jit_equals_nojit's absolute
  # 1e-6; decay=0.9 keeps |g/RMS| <= 3.16 on the first steps (with 0.99 it is ~10).
  E(
    "rmsprop_torch_momentum_centered",
    nn.rmsprop,
    dict(learning_rate=0.01, decay=0.9, momentum=0.9, centered=True, convention="torch"),
    static=("convention",),
    zoo=_lr(nn.rmsprop, learning_rate=1e-4, momentum=0.9, centered=True, convention="torch"),
    zoo_steps=4000,
  ),
  E(
    "rmsprop_keras",
    nn.rmsprop,
    dict(learning_rate=0.01, eps=1e-7, momentum=0.5, convention="keras"),
    static=("convention",),
    zoo=_lr(nn.rmsprop, learning_rate=1e-3, eps=1e-7, momentum=0.5, convention="keras"),
    zoo_steps=4000,
  ),
  E(
    "rmsprop_tf1",
    nn.rmsprop,
    dict(learning_rate=0.01, eps=1e-10, convention="tf1"),
    static=("convention",),
    zoo=_lr(nn.rmsprop, learning_rate=1e-3, eps=1e-10, convention="tf1"),
    zoo_steps=4000,
  ),
]
