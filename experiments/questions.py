"""One table of a user's two questions over several benchmarks (training seeds of one agent).

    python experiments/questions.py BENCH_DIR [BENCH_DIR ...] > TABLE.md

Each BENCH_DIR is a `make benchmark` output (its `summary.json` holds `untuned` and `tuned`, agent
− method paired over the benchmark's seeds). Per rival: the agent's paired difference [95% CI] for
each benchmark, untuned then tuned, ✓ where the CI lies above 0 and ✗ below; a rival is beaten
on a question only where every benchmark's CI lies above 0.

Inputs that cannot be compared are refused with one line and exit status 2: a folder without a
readable summary.json, an evaluation without an agent, benchmarks of different agents, or
benchmarks whose rivals differ (a rival missing from one table would silently drop out).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ganno_jax.evaluation.report import cell  # noqa: E402  (one format for every table)


class Refused(Exception):
    """An input the table cannot use; main prints it as one line and exits 2."""


def read_summary(folder: str) -> dict:
    path = os.path.join(folder, "summary.json")
    try:
        with open(path) as f:
            s = json.load(f)
        s["untuned"], s["tuned"], s["methods"]  # noqa: B018 - the keys every benchmark writes
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise Refused(f"{path}: not a benchmark's summary ({e.__class__.__name__}: {str(e)[:80]})") from None
    return s


def agent_of(s: dict, folder: str) -> str:
    """The benchmarked agent: recorded in summary.json, or (older files) the one method every
    paired comparison was made against."""
    agent = s.get("agent")
    if agent is None and "agent" not in s and s["untuned"]:
        others = [m for m in s["methods"] if m not in s["untuned"]]
        agent = others[0] if len(others) == 1 else None
    if agent is None or not s["untuned"]:
        raise Refused(f"{folder}: the evaluation has no agent (no paired comparison to tabulate)")
    return agent


def table(folders: list[str]) -> str:
    summaries = [read_summary(d) for d in folders]
    agents = {agent_of(s, d) for s, d in zip(summaries, folders)}
    if len(agents) > 1:
        raise Refused(f"the benchmarks measure different agents ({', '.join(sorted(agents))})")
    agent = agents.pop()
    rivals = [list(s["untuned"]) for s in summaries]
    for d, r in zip(folders[1:], rivals[1:]):
        if set(r) != set(rivals[0]):
            only = sorted(set(rivals[0]) ^ set(r))
            raise Refused(f"{d} and {folders[0]} compare against different rivals ({', '.join(only)}); "
                          f"run every benchmark with the same methods")
    names = [os.path.basename(os.path.normpath(d)) for d in folders]
    out = ["| question | " + " | ".join(names) + " | beaten on every one |", "|---" * (len(names) + 2) + "|"]
    for q in ("untuned", "tuned"):
        means = [f"{s['methods'][agent][q + '_mean']:.2f}" for s in summaries]
        out.append(f"| agent, {q} | " + " | ".join(means) + " | |")
    for q in ("untuned", "tuned"):
        for m in rivals[0]:
            ps = [s[q][m] for s in summaries]
            beaten = all(p["ci95"][0] > 0 for p in ps)
            out.append(f"| {q}: vs {m} | " + " | ".join(cell(p) for p in ps) + f" | {'yes' if beaten else 'no'} |")
    if all("untuned_vs_best_tuned" in s for s in summaries):  # can a user skip tuning altogether?
        ps = [s["untuned_vs_best_tuned"] for s in summaries]
        beaten = all(p["ci95"][0] > 0 for p in ps)
        out.append(f"| agent untuned vs the best rival tuned ({ps[0]['rival']}) | " + " | ".join(cell(p) for p in ps)
                   + f" | {'yes' if beaten else 'no'} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args(argv)
    try:
        sys.stdout.write(table(args.dirs))
    except Refused as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
