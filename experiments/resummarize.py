"""Recompute a finished evaluation's `summary.json` (and the two-questions table of its
`results.md`) from its `results.csv`, with this version's `ganno_jax.evaluation.report`: the
summary is a function of the rows, so nothing is run again.

    python experiments/resummarize.py DIR [DIR ...]
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganno_jax.evaluation import report  # noqa: E402
from ganno_jax.evaluation.controllers import LR_FREE_METHODS, NEEDS_CHECKPOINT  # noqa: E402

MARK = "\n## A user's two questions"


def resummarize(folder: str) -> None:
    rows = report.read_csv(os.path.join(folder, "results.csv"))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    agents = [m for m in methods if m in NEEDS_CHECKPOINT]
    agent = agents[0] if agents else None
    summary = report.summary(rows, agent)
    for m in set(methods) & LR_FREE_METHODS:
        summary["methods"][m]["lr_free"] = True
    with open(os.path.join(folder, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    md_path = os.path.join(folder, "results.md")
    if agent and os.path.exists(md_path):
        text = open(md_path).read()
        text = text.split(MARK)[0].rstrip("\n") + "\n" + report.questions_table(summary, agent)
        with open(md_path, "w") as f:
            f.write(text)


if __name__ == "__main__":
    for d in sys.argv[1:]:
        resummarize(d)
