"""Layering: inner task → environment → agent → trainer → evaluation; a lower layer never imports
a higher one (the trainer's demonstrations take their schedules from the inner layer)."""

import subprocess
import sys


def test_the_trainer_does_not_import_the_evaluation_layer():
    code = ("import sys, ganno_jax.trainer.config, ganno_jax.trainer.demos, ganno_jax.trainer.anakin; "
            "bad = sorted(m for m in sys.modules if m.startswith('ganno_jax.evaluation')); "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
