#!/bin/bash
# Foresight and credit assignment: IPPO (the default, from default_agent.sh) vs + behaviour
# cloning on handcrafted schedules vs + central critic vs both, 3 training seeds each, the same PPO
# budget (19,200 env steps; BC adds 1,280 demonstration env steps), benchmarked in-distribution.
# Usage: [SEEDS="0 1 2"] experiments/ablation.sh OUT_DIR   (after default_agent.sh into the same
# OUT_DIR; ~16 min per variant and seed alone on 2 cores, ~2.5 h for all)
set -ex
F=$(realpath -m "${1:?usage: $0 OUT_DIR}")
cd "$(dirname "$0")/.."
export GANNO_NO_PROGRESS=1
declare -A ARGS=( [bc]="--set pretrain=bc" [central]="--set critic=central"
                  [both]="--set pretrain=bc --set critic=central" )
for s in ${SEEDS:-0 1 2}; do
  for v in bc central both; do
    make train ENV=mlp_fmnist SEED=$s OUT=$F/${v}_s$s ARGS="${ARGS[$v]}" > $F/${v}_s$s.log 2>&1
    make benchmark CKPT=$F/${v}_s$s ENV=mlp_fmnist OUT=$F/bench_${v}_s${s}_mlp_fmnist \
      ARGS="--methods ganno,random,constant,linear,cosine,sgdr,onecycle,warmup_cosine --baselines-from $F/bench_ippo_s0_mlp_fmnist" \
      > $F/bench_${v}_s${s}.log 2>&1
  done
done
