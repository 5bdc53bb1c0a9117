"""ganno_jax: GANNO (layerwise learning-rate control with multi-agent RL) in JAX.

  env, params = ganno_jax.make("mlp_fmnist")            # the environment (gymnax-style)
  policy = ganno_jax.pretrained()                        # or ganno_jax.load_policy("runs/RUN")
  tx = ganno_jax.scheduler(policy, model, x[:1], init_lr=1e-3, weight_decay=1e-4, total_steps=1000)
"""

__version__ = "0.3.0"  # the one version source (pyproject.toml reads it)

from ganno_jax.deploy.policy import Policy, load_policy, pretrained, save_policy  # noqa: E402
from ganno_jax.deploy.scheduler import (  # noqa: E402
    scheduler, scheduler_eval_params, scheduler_learning_rates)
from ganno_jax.env import make, make_env  # noqa: E402

__all__ = ["Policy", "load_policy", "make", "make_env", "pretrained", "save_policy", "scheduler",
           "scheduler_eval_params", "scheduler_learning_rates"]
