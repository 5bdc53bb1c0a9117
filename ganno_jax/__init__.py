"""ganno_jax: GANNO (layerwise learning-rate control with multi-agent RL) in JAX."""

__version__ = "0.1.0"
