"""Registry entries: rmsprop and its developments (lecture 6e).

Zoo settings follow from each entry's arguments: rmsprop's step is about lr in every coordinate
whatever the curvature, so with a constant rate it ends oscillating in a band of width ~lr around
the minimum. The zoo therefore runs 4000 steps with a small terminal step lr/(1-mu) = 1e-3
(lr = 1e-3 without momentum, 1e-4 with mu = 0.9). Every entry meets the default tolerances.
``initial_scale`` is read once at ``init`` (documented), so it is never tried as a schedule.
"""

import nnml_optax as nn

from . import E


def _entry(name, factory, kw):
  lr = 1e-3 * (1 - kw.get("momentum", 0.0))
  return E(name, factory, kw, lr=lr, fixed=("initial_scale",), zoo_steps=4000)


def D(name, **kw):  # the direction scale_by_rms
  return _entry(name, nn.scale_by_rms, kw)


def A(name, **kw):  # the alias rmsprop, learning rate 0.01
  return _entry(name, nn.rmsprop, dict(learning_rate=0.01, **kw))


ENTRIES = [
  D("scale_by_rms", decay=0.9, eps=1e-8),
  D("scale_by_rms_eps_outside", decay=0.9, eps=1e-8, eps_in_sqrt=False),
  D("scale_by_rms_centered", decay=0.9, eps=1e-8, centered=True),
  D("scale_by_rms_initial_scale", decay=0.99, eps=1e-8, initial_scale=1.0),
  D("scale_by_rms_bias_correction", decay=0.99, eps=1e-8, bias_correction=True),
  A("rmsprop", decay=0.9, eps=1e-8),
  A("rmsprop_centered", decay=0.9, centered=True),
  A("rmsprop_momentum", momentum=0.9),
  A("rmsprop_nesterov", momentum=0.9, nesterov=True),
  A("rmsprop_centered_momentum", momentum=0.9, centered=True),
  A("rmsprop_bias_correction_momentum", decay=0.99, momentum=0.9, bias_correction=True),
  A("rmsprop_torch", decay=0.99, convention="torch"),
  # torch's buffer holds RMS-scaled gradients before the learning rate (~10-30 here), so a
  # one-ulp jit/no-jit difference exceeds test_jit_equals_nojit's absolute 1e-6; decay=0.9
  # keeps |g/RMS| <= 3.16 on the first steps (with 0.99 it is ~10).
  A("rmsprop_torch_centered_momentum", decay=0.9, momentum=0.9, centered=True, convention="torch"),
  A("rmsprop_keras", eps=1e-7, momentum=0.5, convention="keras"),
  A("rmsprop_tf1", eps=1e-10, convention="tf1"),
]
