"""Float64 numpy references for local gains and delta-bar-delta.

Each loop is written in the sources' own (signed, absolute-rate) form, not in the library's
unsigned ``scale_by_*`` form, so that the tests check the reformulation too.
"""

from __future__ import annotations

import numpy as np


def _grads(grads_or_fn, w, t):
  return np.asarray(grads_or_fn(w) if callable(grads_or_fn) else grads_or_fn[t], np.float64)


def local_gains(w0, grads_or_fn, lr, inc=0.05, dec=0.95, gmin=0.1, gmax=10.0, steps=None):
  """Hinton's local gains (literal rule: first step and zero products decrease).

  ``if g(t)·g(t−1) > 0: G += inc else: G *= dec; G = clip(G, gmin, gmax); w −= lr·G·g(t)``,
  with G = 1 and g(0) = 0. Returns the lists of gains and of weights after each step.
  """
  w = np.array(w0, np.float64)
  gain, g_prev = np.ones_like(w), np.zeros_like(w)
  gains, ws = [], []
  n = steps if callable(grads_or_fn) else len(grads_or_fn)
  for t in range(n):
    g = _grads(grads_or_fn, w, t)
    gain = np.where(g * g_prev > 0, gain + inc, gain * dec)
    gain = np.clip(gain, gmin, gmax)
    w = w - lr * gain * g
    g_prev = g
    gains.append(gain.copy())
    ws.append(w.copy())
  return gains, ws


def local_gains_momentum(
  w0, grads_or_fn, lr, alpha, inc=0.05, dec=0.95, gmin=0.1, gmax=10.0, steps=None
):
  """Gains with momentum (Jacobs): increase iff g(t)·v(t−1) < 0, else decrease;
  clip; ``v(t) = α·v(t−1) − ε·G·g(t)``; ``w += v(t)``. Returns gains, weights, velocities."""
  w = np.array(w0, np.float64)
  gain, v = np.ones_like(w), np.zeros_like(w)
  gains, ws, vs = [], [], []
  n = steps if callable(grads_or_fn) else len(grads_or_fn)
  for t in range(n):
    g = _grads(grads_or_fn, w, t)
    gain = np.where(g * v < 0, gain + inc, gain * dec)
    gain = np.clip(gain, gmin, gmax)
    v = alpha * v - lr * gain * g
    w = w + v
    gains.append(gain.copy())
    ws.append(w.copy())
    vs.append(v.copy())
  return gains, ws, vs


def delta_bar_delta(w0, grads_or_fn, eps0, kappa, phi, theta, steps=None, eps_max=None):
  """Jacobs' delta-bar-delta, in absolute units and the ε(t+1) ordering:

  ``Δε = +κ if δ̄(t−1)·δ(t) > 0; −φ·ε if < 0; 0 otherwise``; ``ε += Δε`` (then ``min(ε, ε_max)``);
  ``w −= ε·δ(t)``; ``δ̄(t) = (1−θ)·δ(t) + θ·δ̄(t−1)``. Returns rates, weights and traces.
  """
  w = np.array(w0, np.float64)
  eps, dbar = np.full_like(w, eps0), np.zeros_like(w)
  rates, ws, traces = [], [], []
  n = steps if callable(grads_or_fn) else len(grads_or_fn)
  for t in range(n):
    d = _grads(grads_or_fn, w, t)
    p = dbar * d
    eps = np.where(p > 0, eps + kappa, np.where(p < 0, eps - phi * eps, eps))
    if eps_max is not None:
      eps = np.minimum(eps, eps_max)
    w = w - eps * d
    dbar = (1 - theta) * d + theta * dbar
    rates.append(eps.copy())
    ws.append(w.copy())
    traces.append(dbar.copy())
  return rates, ws, traces
