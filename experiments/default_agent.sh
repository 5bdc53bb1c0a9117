#!/bin/bash
# The default agent (cpu preset) with 3 training seeds, each benchmarked in-distribution (mlp_fmnist)
# and zero-shot (mlp5_fmnist: the deeper net of the family; mlp_mnist: another dataset).
# Usage: experiments/default_agent.sh OUT_DIR    (about 90 min alone on 2 cores)
# Seed 0's benchmark runs every baseline; seeds 1-2 reuse those rows (--baselines-from: the
# baselines are deterministic given the protocol, which the evaluator checks).
set -ex
F=$(realpath -m "${1:?usage: $0 OUT_DIR}")
cd "$(dirname "$0")/.."
export GANNO_NO_PROGRESS=1
METHODS=ganno,random,constant,linear,cosine,sgdr,onecycle,warmup_cosine
for s in 0 1 2; do make train ENV=mlp_fmnist SEED=$s OUT=$F/ippo_s$s > $F/ippo_s$s.log 2>&1; done
for env in mlp_fmnist mlp5_fmnist mlp_mnist; do
  make benchmark CKPT=$F/ippo_s0 ENV=$env OUT=$F/bench_ippo_s0_$env > $F/bench_ippo_s0_$env.log 2>&1
  for s in 1 2; do
    make benchmark CKPT=$F/ippo_s$s ENV=$env OUT=$F/bench_ippo_s${s}_$env \
      ARGS="--methods $METHODS --baselines-from $F/bench_ippo_s0_$env" > $F/bench_ippo_s${s}_$env.log 2>&1
  done
done
