"""Table 3 (paper): GANNO started at LR 0 (it must warm up by itself) vs warm-up schedules.

  python experiments/table3.py --preset cpu --ckpt runs/RUN        # writes experiments/results/table3_cpu/

Two evaluations in one folder: `ganno_init0/` (GANNO from an initial LR of 0 for every layer) and
`warmup/` (linear warm-up + cosine and cosine one-cycle, the grid's LRs as their peaks; grids as
in table1.py).
"""

from __future__ import annotations

import os
import sys

from common import HERE, parser, run
from table1 import GRID

if __name__ == "__main__":
    args = parser(__doc__).parse_args()
    root = args.out or os.path.join(HERE, "results", f"table3_{args.preset}")
    code = run("table3", args.__class__(**dict(vars(args), out=os.path.join(root, "warmup"), ckpt=None)),
               GRID, ["warmup_cosine", "onecycle"])
    if code == 0 and args.ckpt:
        zero = {p: dict(g, init_lrs="0") for p, g in GRID.items()}
        code = run("table3", args.__class__(**dict(vars(args), out=os.path.join(root, "ganno_init0"))),
                   zero, [])
    sys.exit(code)
