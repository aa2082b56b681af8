"""Float64 numpy reference for the Rprop family.

Written from the papers' state (step size Δ, the stored previous derivative ``g_prev`` as a float, the
previous weight change ``Δw_prev`` as a float, the scalar ``E_prev``) -- deliberately not the
library's compact int8-sign state, so that agreement also checks that the compact state loses
nothing.
"""

import numpy as np


def rprop(
  w0,
  grads,
  variant,
  lr=0.1,
  eta_minus=0.5,
  eta_plus=1.2,
  min_step=1e-6,
  max_step=50.0,
  values=None,
  clamp_always=True,
):
  """Runs one Rprop variant on a gradient stream, elementwise.

  Args:
    w0: initial weights (array-like).
    grads: a sequence of gradients (each shaped like ``w0``), one per step.
    variant: ``"rprop-"``, ``"rprop+"``, ``"irprop-"`` or ``"irprop+"``.
    lr: Δ₀. eta_minus, eta_plus, min_step, max_step: η⁻, η⁺, Δmin, Δmax (floats or functions
      of the step t counted from 0).
    values: the losses E_t (``"irprop+"`` only).
    clamp_always: clamp Δ into [Δmin, Δmax] also when p = 0 (torch; this project's
      choice for all variants). With ``False``, Δ is left unchanged when p = 0.

  Returns:
    ``(ws, deltas)``: lists of the weights and step sizes after each step.
  """
  at = lambda h, t: h(t) if callable(h) else h  # noqa: E731
  w = np.array(w0, np.float64)
  delta = np.full_like(w, lr)
  g_prev = np.zeros_like(w)
  dw_prev = np.zeros_like(w)
  e_prev = np.inf
  ws, deltas = [], []
  for t, g in enumerate(grads):
    g = np.array(g, np.float64)
    em, ep, lo, hi = at(eta_minus, t), at(eta_plus, t), at(min_step, t), at(max_step, t)
    p = np.sign(g) * np.sign(g_prev)
    # shared step-size rule
    if clamp_always:  # torch: clamp(Δ·factor, min, max) whatever the factor
      factor = np.where(p > 0, ep, np.where(p < 0, em, 1.0))
      delta = np.clip(delta * factor, lo, hi)
    else:
      delta = np.where(
        p > 0, np.minimum(delta * ep, hi), np.where(p < 0, np.maximum(delta * em, lo), delta)
      )
    normal = -np.sign(g) * delta
    if variant == "rprop-":
      dw = normal
      w = w + dw
      g_prev = g
    elif variant == "rprop+":
      dw = np.where(p < 0, 0.0, normal)
      w = np.where(p < 0, w - dw_prev, w + dw)
      g_prev = np.where(p < 0, 0.0, g)
    elif variant == "irprop-":
      dw = np.where(p < 0, 0.0, normal)
      w = w + dw
      g_prev = np.where(p < 0, 0.0, g)
    elif variant == "irprop+":
      e = values[t]
      dw = np.where(p < 0, 0.0, normal)
      back = (p < 0) & (e > e_prev)
      w = np.where(back, w - dw_prev, w + dw)
      g_prev = np.where(p < 0, 0.0, g)
      e_prev = e
    else:
      raise ValueError(variant)
    dw_prev = dw
    ws.append(w.copy())
    deltas.append(delta.copy())
  return ws, deltas


def sign_steps(grads, step):
  """Fixed-size sign steps: w -= step·sign(g)."""
  return np.cumsum([-step * np.sign(g) for g in grads])
