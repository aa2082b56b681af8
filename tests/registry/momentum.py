"""Registry entries: momentum (lecture 6c) and sgd.

Zoo settings follow from each entry: learning rate 0.001 for 6000 steps with a velocity, 0.002
for 20000 steps without one (plain sgd). Aliases take learning rate 0.05 elsewhere.
"""

import nnml_optax as nn
from nnml_optax import schedules

from . import Entry


def E(name, factory, **kw):
  lr, steps = (0.001, 6000) if "momentum" in kw else (0.002, 20000)
  if factory is not nn.scale_by_momentum:
    kw = dict(learning_rate=0.05, **kw)
  return Entry(name, factory, kw, lr=lr, zoo_steps=steps)


_SUTSKEVER = schedules.sutskever_momentum(0.9, period=2)  # 0.5, 0.75, ... 0.9 from step 8
_RAMP = schedules.momentum_ramp(0.5, 0.9, transition_steps=2)

ENTRIES = [
  E("sgd", nn.sgd),
  E("sgd_momentum", nn.sgd, momentum=0.9),
  E("sgd_nesterov", nn.sgd, momentum=0.9, nesterov=True),
  E("momentum", nn.momentum, momentum=0.9),
  E("nesterov", nn.nesterov, momentum=0.9),
  E("momentum_nesterov_flag", nn.momentum, momentum=0.5, nesterov=True),
  E("momentum_sutskever", nn.nesterov, momentum=_SUTSKEVER),
  E("scale_by_momentum", nn.scale_by_momentum, momentum=0.9),
  E("scale_by_momentum_nesterov", nn.scale_by_momentum, momentum=0.9, nesterov=True),
  E("scale_by_momentum_ramp", nn.scale_by_momentum, momentum=_RAMP),
]
