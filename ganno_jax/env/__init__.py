"""The GANNO multi-agent environment."""

from ganno_jax.env.ganno_env import GannoEnv
from ganno_jax.env.registry import ENV_IDS, make, make_env
from ganno_jax.env.types import EnvConfig, EnvParams, EnvState

__all__ = ["ENV_IDS", "EnvConfig", "EnvParams", "EnvState", "GannoEnv", "make", "make_env"]
