"""Float64 numpy references for momentum (lecture 6c; Sutskever et al. 2013, §2.1)."""

import numpy as np


def classical(theta0, grads_or_fn, lr, mu, steps=None):
  """Classical momentum, lecture 6c / Sutskever et al. 2013 (CM): v = mu*v - lr*g(theta); theta += v.

  ``grads_or_fn`` is a sequence of gradients or a function theta -> gradient; ``mu`` a float or a
  function of the step t (counted from 0). Returns the list of iterates theta_1..theta_n.
  """
  theta, v, out = np.float64(theta0), 0.0, []
  n = steps if callable(grads_or_fn) else len(grads_or_fn)
  for t in range(n):
    g = grads_or_fn(theta) if callable(grads_or_fn) else grads_or_fn[t]
    m = mu(t) if callable(mu) else mu
    v = m * v - lr * g
    theta = theta + v
    out.append(theta)
  return out


def nesterov_sutskever(theta0, grad_fn, lr, mu, steps):
  """NAG in Sutskever's form, Sutskever et al. 2013, §2.1: v = mu*v - lr*g(theta + mu*v); theta += v.

  Returns (theta_t, look-ahead theta_t + mu*v_t) for t = 1..steps.
  """
  theta, v, out = np.float64(theta0), 0.0, []
  for _ in range(steps):
    v = mu * v - lr * grad_fn(theta + mu * v)
    theta = theta + v
    out.append((theta, theta + mu * v))
  return out


def nesterov_lookahead(theta0, grads_or_fn, lr, mu, steps=None):
  """Reformulated NAG (Sutskever et al. 2013, §2.1; torch/optax): b = mu*b + g(Θ); Θ -= lr*(g + mu*b)."""
  big, b, out = np.float64(theta0), 0.0, []
  n = steps if callable(grads_or_fn) else len(grads_or_fn)
  for t in range(n):
    g = grads_or_fn(big) if callable(grads_or_fn) else grads_or_fn[t]
    b = mu * b + g
    big = big - lr * (g + mu * b)
    out.append(big)
  return out


def sutskever_mu(t, mu_max, period=250):
  """Sutskever et al. 2013, Eq. 5."""
  return min(1.0 - 2.0 ** (-1.0 - np.log2(t // period + 1)), mu_max)
