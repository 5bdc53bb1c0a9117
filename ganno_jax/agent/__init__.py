"""The learning agent: recurrent actor-critic, normalisers, PPO maths."""
