"""Evaluation: controllers that set learning rates, episode rollouts, tables and plots."""
