"""Registry entries: the Rprop family (lecture 6e).

``learning_rate`` is Rprop's initial step size Δ₀, documented as read once at init (not
schedulable), hence ``fixed``. Rprop is a full-batch method: the zoo feeds it exact gradients.
Default zoo tolerances; 3000 steps because sign steps crawl along the curved Rosenbrock valley
(Rprop-/Rprop+ reach about 2e-3/3e-3 there, the iRprop variants far less).
"""

import nnml_optax as nn

from . import VALUE, E

_HP = dict(eta_minus=0.5, eta_plus=1.2, min_step_size=1e-6, max_step_size=50.0)

ENTRIES = [
  E(
    "rprop_irprop_minus",
    nn.rprop,
    dict(learning_rate=0.01, **_HP, variant="irprop-"),
    static=("variant",),
    fixed=("learning_rate",),
    zoo_steps=3000,
  ),
  E(
    "rprop_rprop_minus",
    nn.rprop,
    dict(learning_rate=0.01, **_HP, variant="rprop-"),
    static=("variant",),
    fixed=("learning_rate",),
    zoo_steps=3000,
  ),
  E(
    "rprop_rprop_plus",
    nn.rprop,
    dict(learning_rate=0.01, **_HP, variant="rprop+"),
    static=("variant",),
    fixed=("learning_rate",),
    zoo_steps=3000,
  ),
  E(
    "rprop_irprop_plus",
    nn.rprop,
    dict(learning_rate=0.01, **_HP, variant="irprop+"),
    extra=VALUE,
    static=("variant",),
    fixed=("learning_rate",),
    zoo_steps=3000,
  ),
  E(
    "scale_by_rprop",
    nn.scale_by_rprop,
    dict(learning_rate=0.01, **_HP),
    lr=1.0,
    static=("variant",),
    fixed=("learning_rate",),
    zoo_steps=3000,
  ),
]
