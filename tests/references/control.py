"""Float64 numpy references for learning-rate control."""

import math

import numpy as np


def bold_step(v, u, s, ref, prev, rho=1.1, sigma=0.5, tol=0.0, undo=True, max_scale=1e3):
  """One call of the bold driver in streaming form.

  ``v`` is the loss at the current point, ``u`` the incoming update, ``s`` the scale, ``ref`` the
  loss where the last step was taken from (None: nothing to compare, at the first call and after
  an undo), ``prev`` the previous emitted step. A rise is a non-finite loss or
  v > ref + tol*|ref|: s *= sigma and (undo) the previous step is negated, the next call stepping
  plainly, or (no undo) the step s*u is taken; otherwise s = min(s * rho, max_scale) and the step
  s*u is taken. A non-finite loss with nothing to compare shrinks s and emits 0. Returns (step, s, ref).
  """
  v, u = float(v), np.asarray(u, np.float64)
  finite = math.isfinite(v)
  if ref is None:
    if finite:
      return s * u, s, v
    return 0.0 * u, s * sigma, None
  if (not finite) or v > ref + tol * abs(ref):
    s *= sigma
    if undo:
      return -prev, s, None
    return s * u, s, (v if finite else ref)
  s = min(s * rho, max_scale)
  return s * u, s, v


def bold_driver_stream(values, updates, rho=1.1, sigma=0.5, tol=0.0, undo=True):
  """:func:`bold_step` over a sequence; returns (emitted steps, scale after each call)."""
  s, ref, prev = 1.0, None, 0.0
  out, scales = [], []
  for v, u in zip(values, updates, strict=True):
    prev, s, ref = bold_step(v, u, s, ref, prev, rho, sigma, tol, undo)
    out.append(prev)
    scales.append(s)
  return out, scales


def bold_driver_run(w0, f, grad, lr, steps, rho=1.1, sigma=0.5, tol=0.0, undo=True):
  """``optax.chain(sgd(lr), bold_driver())`` on a function: the points the parameters pass through
  (w0 first)."""
  w, path = np.float64(w0), [np.float64(w0)]
  s, ref, prev = 1.0, None, 0.0
  for _ in range(steps):
    prev, s, ref = bold_step(f(w), -lr * grad(w), s, ref, prev, rho, sigma, tol, undo)
    w = w + prev
    path.append(w)
  return path


def reduce_on_plateau(
  values, factor=0.1, patience=10, cooldown=0, min_scale=0.0, rtol=1e-4, atol=0.0, mode="min"
):
  """torch ``ReduceLROnPlateau.step``, with a sign-correct threshold.

  improved iff m < best - (rtol*|best| + atol) (min; max mirrored); then best/bad update, cooldown
  zeroes bad, and bad > patience reduces s to max(s*factor, min_scale) (never up). Returns
  (scales, bests) after each evaluation.
  """
  sign = 1.0 if mode == "min" else -1.0
  s, best, bad, cool = 1.0, sign * math.inf, 0, 0
  scales, bests = [], []
  for m in values:
    m = float(m)
    thr = rtol * abs(best) + atol if math.isfinite(best) else 0.0
    if math.isfinite(m) and sign * m < sign * best - thr:
      best, bad = m, 0
    else:
      bad += 1
    if cool > 0:
      cool -= 1
      bad = 0
    if bad > patience:
      s = min(s, max(s * factor, min_scale))
      cool, bad = cooldown, 0
    scales.append(s)
    bests.append(best)
  return scales, bests


def fan_in(shape):
  """Fan-in in Flax's kernel layout: prod(shape[:-1]) for ndim >= 2, else 1."""
  return int(np.prod(shape[:-1])) if len(shape) >= 2 else 1


def fan_in_scale(shape, power=0.5):
  """The learning-rate factor fan_in**-power (lecture 6b: 1/sqrt(fan-in))."""
  return float(fan_in(shape)) ** -power
