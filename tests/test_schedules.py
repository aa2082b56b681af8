"""Momentum schedules (``nnml_optax.schedules``): the lecture's ramp (6c) and Sutskever et al.'s
μ_t (ICML 2013, Eq. 5), in the order of the module."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from nnml_optax import schedules

from references import momentum as ref

# momentum_ramp ---------------------------------------------------------------------------------


def test_momentum_ramp():
  mu = schedules.momentum_ramp(0.5, 0.9, transition_steps=10, transition_begin=5)
  got = [float(mu(t)) for t in (0, 5, 10, 15, 100)]
  np.testing.assert_allclose(got, [0.5, 0.5, 0.7, 0.9, 0.9], rtol=1e-6)
  assert mu(jnp.asarray(3, jnp.int32)).dtype == jnp.float32


@pytest.mark.parametrize(
  "make,match",
  [
    (lambda: schedules.momentum_ramp(0.5, 1.2, transition_steps=10), "end_value"),
    (lambda: schedules.momentum_ramp(-0.1, 0.9, transition_steps=10), "init_value"),
    (lambda: schedules.momentum_ramp(transition_steps=0), "transition_steps"),
    (lambda: schedules.momentum_ramp(transition_steps=5, transition_begin=-1), "transition_begin"),
  ],
)
def test_momentum_ramp_bad_input(make, match):
  with pytest.raises(ValueError, match=match):
    make()


# sutskever_momentum ----------------------------------------------------------------------------


@pytest.mark.parametrize(
  "t,mu",
  [
    (0, 0.5),
    (249, 0.5),
    (250, 0.75),
    (500, 0.8333333),
    (750, 0.875),
    (1000, 0.9),
    (2250, 0.95),
    (12250, 0.99),
    (24750, 0.995),
    (124750, 0.999),
  ],
)
def test_sutskever_schedule_eq5(t, mu):
  sched = schedules.sutskever_momentum(0.999)
  np.testing.assert_allclose(float(sched(t)), mu, rtol=1e-6)
  assert float(sched(t)) == pytest.approx(ref.sutskever_mu(t, 0.999), rel=1e-6)


def test_sutskever_cap_and_final_phase():
  sched = schedules.sutskever_momentum(0.9)
  assert all(float(sched(t)) == np.float32(0.9) for t in (1000, 5000, 10**6))
  sched = schedules.sutskever_momentum(0.995, total_steps=30000, final_steps=1000)
  assert float(sched(28999)) == np.float32(0.995)
  assert float(sched(29000)) == np.float32(0.9) == float(sched(29999))
  assert float(schedules.sutskever_momentum(0.0, total_steps=2000)(1500)) == 0.0
  assert float(schedules.sutskever_momentum(0.99, total_steps=2000)(0)) == 0.5  # min(0.5, 0.9)


@pytest.mark.parametrize(
  "make,match",
  [
    (lambda: schedules.sutskever_momentum(period=0), "period"),
    (lambda: schedules.sutskever_momentum(1.0), "mu_max"),
    (lambda: schedules.sutskever_momentum(0.99, final_momentum=1.0), "final_momentum"),
    (lambda: schedules.sutskever_momentum(total_steps=500, final_steps=1000), "total_steps"),
    (lambda: schedules.sutskever_momentum(final_steps=-1), "final_steps"),
  ],
)
def test_sutskever_bad_input(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def test_sutskever_bad_types():
  with pytest.raises(TypeError, match="period"):
    schedules.sutskever_momentum(period=2.5)
  with pytest.raises(TypeError, match="mu_max"):
    schedules.sutskever_momentum(lambda t: 0.9)
