"""Test configuration: 8 fake CPU devices (for the sharding tests), hypothesis profiles."""

import os

# Must happen before jax initialises its backends: 8 fake CPU devices for the sharded checks.
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()

import hypothesis  # noqa: E402

hypothesis.settings.register_profile(
  "ci", max_examples=200, deadline=None, derandomize=True, print_blob=True
)
hypothesis.settings.register_profile("dev", max_examples=200, deadline=None)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "dev")
