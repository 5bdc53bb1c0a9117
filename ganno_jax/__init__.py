"""ganno_jax: GANNO (layerwise learning-rate control with multi-agent RL) in JAX."""

__version__ = "0.1.0"

from ganno_jax.env import make, make_env  # noqa: E402

__all__ = ["make", "make_env"]
