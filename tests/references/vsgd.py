"""Float64 numpy reference for element-wise vSGD."""

import numpy as np


def _step(t, g, h, s, c, n0, eps, robust):
  """One call of the transform form on the state ``s`` (gbar, vbar, hbar, vhbar, tau); returns
  the new state and the rate eta (0 during the slow start)."""
  gb, vb, hb, vhb, tau = s
  if t < n0:
    gb, vb, hb, vhb = gb + g / n0, vb + g * g / n0, hb + h / n0, vhb + h * h / n0
    if t == n0 - 1:
      vb, hb, vhb, tau = c * vb, c * hb, c * c * vhb, float(n0)
    return (gb, vb, hb, vhb, tau), 0.0
  a, keep = 1.0 / tau, (tau - 1) / tau  # keep = 1 - a, without cancellation near tau = 1
  gb = keep * gb + a * g
  vb = keep * vb + a * g * g
  hb = keep * hb + a * h
  vhb = keep * vhb + a * h * h
  r = min(max(gb * gb / (vb + eps), 0.0), 1.0)
  eta = r * hb / (vhb + eps) if robust else r / (hb + eps)
  tau = (1 - r) * tau + 1
  return (gb, vb, hb, vhb, tau), eta


def vsgd_l(theta0, grads, curvatures, c, n0, *, eps=0.0, robust=False):
  """vSGD-l in transform form, one scalar parameter.

  ``grads`` and ``curvatures`` are the per-call samples g and h (h >= 0). The first ``n0`` calls
  only collect sample means; at the ``n0``-th call vbar, hbar are multiplied by C and
  vhbar by C^2, and tau = n0. Every later call does, in this order:
  a = 1/tau; gbar, vbar, hbar, vhbar <- (1-a)*old + a*sample; r = clip(gbar^2/(vbar+eps), 0, 1);
  eta = r/(hbar+eps) (paper) or r*hbar/(vhbar+eps) (robust, §5.5); tau = (1-r)*tau + 1;
  theta -= eta*g.

  Returns a list of dicts (one per call) with gbar, vbar, hbar, vhbar, tau, eta, theta.
  """
  theta = np.float64(theta0)
  s = (0.0, 0.0, 0.0, 0.0, 1.0)
  out = []
  for t, (g, h) in enumerate(zip(grads, curvatures, strict=True)):
    g, h = np.float64(g), np.float64(h)
    s, eta = _step(t, g, h, s, c, n0, eps, robust)
    if t >= n0:  # the slow start does not move
      theta = theta - eta * g
    out.append(
      dict(zip(("gbar", "vbar", "hbar", "vhbar", "tau"), s, strict=True), eta=eta, theta=theta)
    )
  return out


def vsgd_fd(theta0, grad_fn, steps, c, n0, *, eps=0.0, robust=True):
  """vSGD-fd on a deterministic 1-d gradient function: h = |g(θ+δ) − g(θ)|/|δ| with
  δ = g during the slow start and δ = gbar afterwards (h = 0 where δ = 0). Returns the iterates."""
  theta = np.float64(theta0)
  s = (0.0, 0.0, 0.0, 0.0, 1.0)
  out = []
  for t in range(steps):
    g = np.float64(grad_fn(theta))
    delta = g if t < n0 else s[0]
    h = abs(grad_fn(theta + delta) - g) / abs(delta) if delta != 0 else 0.0
    s, eta = _step(t, g, h, s, c, n0, eps, robust)
    if t >= n0:  # the slow start does not move
      theta = theta - eta * g
    out.append(theta)
  return out
