"""Deployment: trained policies as artefacts and as an optax transform."""
