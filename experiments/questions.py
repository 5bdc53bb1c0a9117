"""One table of a user's two questions over several benchmarks (training seeds of one agent).

    python experiments/questions.py BENCH_DIR [BENCH_DIR ...] > TABLE.md

Each BENCH_DIR is a `make benchmark` output (its `summary.json` holds `untuned` and `tuned`, agent
− method paired over the benchmark's seeds). Per rival: the agent's paired difference [95% CI] for
each benchmark, untuned then tuned, ✓ where the CI lies above 0 and ✗ below; a rival is beaten
on a question only where every benchmark's CI lies above 0 (the bar of issue 22).
"""

import argparse
import json
import os


def cell(p: dict) -> str:
    mark = " ✓" if p["ci95"][0] > 0 else (" ✗" if p["ci95"][1] < 0 else "")
    return f"{p['mean_diff']:+.2f} [{p['ci95'][0]:+.2f}, {p['ci95'][1]:+.2f}]{mark}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dirs", nargs="+")
    args = ap.parse_args()
    summaries = [json.load(open(os.path.join(d, "summary.json"))) for d in args.dirs]
    names = [os.path.basename(os.path.normpath(d)) for d in args.dirs]
    agent = next(m for m in summaries[0]["methods"] if m not in summaries[0]["untuned"])
    print("| question | " + " | ".join(names) + " | beaten on every one |")
    print("|---" * (len(names) + 2) + "|")
    for q in ("untuned", "tuned"):
        means = [f"{s['methods'][agent][q + '_mean']:.2f}" for s in summaries]
        print(f"| agent, {q} | " + " | ".join(means) + " | |")
    for q in ("untuned", "tuned"):
        for m in summaries[0][q]:
            ps = [s[q][m] for s in summaries]
            beaten = all(p["ci95"][0] > 0 for p in ps)
            print(f"| {q}: vs {m} | " + " | ".join(cell(p) for p in ps) + f" | {'yes' if beaten else 'no'} |")


if __name__ == "__main__":
    main()
