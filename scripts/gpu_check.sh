#!/usr/bin/env bash
# One go on a GPU, Keras 3 on the JAX backend (no TensorFlow needed), in under 8 minutes on an
# H200; JSON lines into a folder:
#
#   scripts/gpu_check.sh [--smoke] [OUT_DIR]          (default OUT_DIR: out/gpu_check)
#
#   steps.jsonl         steps/s of tfstyle and the Keras example's step at 512 and 1024 px, in
#                       float32 and mixed_bfloat16 (scripts/benchmark.py; random weights)
#   compile.jsonl       tfstyle's compile time at 1024 px in a fresh process, cold (empty JAX
#                       persistent compilation cache in OUT_DIR/jax_cache) then warm (the cache
#                       the cold run filled): label compile_cold / compile_warm, field compile_s
#   memory.jsonl        tfstyle's peak memory (XLA's memory analysis of the compiled step) at
#                       2048 and 4096 px, without and with --remat (1024 px: steps.jsonl's
#                       rows); one process per size and setting, so an out-of-memory at 4096
#                       px is recorded and the rest goes on
#   checks.jsonl        one line per check: its exit status and wall time ("skipped" when fewer
#                       than 20 s are left before END_S, default 470 s; each check is stopped
#                       at END_S, exit 124, so the whole stays under 8 minutes)
#   *.log               each check's stderr
#
# The checks run one after another, most wanted first: steps, compile, the default run, then
# memory without and with --remat. Run side by side (memory beside compile and the default run,
# tried on an H200 on 2026-12-04), every compile took about five times as long as alone (a 1024
# px step 64.7 s against 12.4 s, 2048 px 100 s against 21.5 s: XLA's GPU compiler uses many host
# threads and autotunes on the one GPU), and three memory checks ran past their limits.
#
# Exit status: the number of checks that failed (0: all ran). --smoke runs the same checks at
# tiny sizes (32-48 px, VGG16, 2 steps, one memory process per remat setting), for CI (.ci/run):
# 2.3 minutes of CPU time (user + sys; most of it XLA compiling) on a 2-core EPYC, so about 2
# minutes of wall time on 2 idle cores (measured only under a load average of 10: 5.6 minutes).
# Environment: PYTHON (default python3), KERAS_BACKEND (default jax), WEIGHTS: a VGG16 weights
# file for the default run (default: random VGG19 weights, which cost the same time), LIMIT_S:
# each check's time limit (default 180 s, 300 with --smoke), END_S (above; 900 with --smoke).
# On the device machine: carry .whl (../shared/tools/device_wheels.sh) and start the command
# with the install line that script prints.
set -uo pipefail
cd "$(dirname "$0")/.."

smoke=0
if [ "${1:-}" = "--smoke" ]; then
    smoke=1
    shift
fi
out="${1:-out/gpu_check}"
mkdir -p "$out"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}" TF_CPP_MIN_LOG_LEVEL=3
py="${PYTHON:-python3}"

# memory_groups: the sizes of each memory process (one process per group and remat setting).
if [ "$smoke" = 1 ]; then
    sizes=32
    compile_size=32
    memory_groups=(32)
    bench=(--network vgg16 --steps 2 --repeats 1 --warmup 0)
    run_args=(--max_size 48 --iterations 2 --scales 1)
    limit="${LIMIT_S:-300}"  # a safety net: a slow or shared CI runner must not fail it
    end="${END_S:-900}"
else
    sizes=512,1024
    compile_size=1024
    memory_groups=(2048 4096)
    bench=(--steps 10 --repeats 2 --warmup 1)
    run_args=(--max_size 512)
    limit="${LIMIT_S:-180}"
    end="${END_S:-470}"
fi
if [ -n "${WEIGHTS:-}" ]; then
    weights=(--network vgg16 --weights "$WEIGHTS")
else
    weights=(--weights none)
fi

# check NAME FILE COMMAND...: runs COMMAND with its stdout appended to FILE.jsonl, for at most
# LIMIT_S seconds and never past END_S.
check() {
    local name=$1 file=$2
    shift 2
    local left=$((end - SECONDS))
    if [ "$left" -lt 20 ]; then
        echo "{\"check\": \"$name\", \"skipped\": \"under 20 s left before END_S=$end\"}" \
            >>"$out/checks.jsonl"
        echo "gpu_check: $name: skipped, under 20 s left before END_S=$end" >&2
        return
    fi
    local start=$SECONDS
    timeout "$((left < limit ? left : limit))" "$@" >>"$out/$file.jsonl" 2>>"$out/$name.log"
    local rc=$?
    echo "{\"check\": \"$name\", \"rc\": $rc, \"wall_s\": $((SECONDS - start))}" >>"$out/checks.jsonl"
    echo "gpu_check: $name: exit $rc, $((SECONDS - start)) s" >&2
}

bench_py=("$py" scripts/benchmark.py "${bench[@]}")
for precision in float32 mixed_bfloat16; do
    check "steps_$precision" steps "${bench_py[@]}" --sizes "$sizes" \
        --precision "$precision" --label steps
done

# The persistent cache keeps every compiled program (no minimum time or size), in a folder of
# this run only, so that "cold" is cold.
rm -rf "$out/jax_cache"
for kind in cold warm; do
    JAX_COMPILATION_CACHE_DIR="$out/jax_cache" JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0 \
        JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES=0 \
        check "compile_$kind" compile "${bench_py[@]}" --impls tfstyle --sizes "$compile_size" \
        --label "compile_$kind"
done
check default_run default_run "$py" scripts/time_to_picture.py "${weights[@]}" -- "${run_args[@]}"
# One process per size and setting, so that an out-of-memory at 4096 px is recorded and the
# rest goes on.
for remat in false true; do
    for group in "${memory_groups[@]}"; do
        check "memory_${group}_remat_$remat" memory "${bench_py[@]}" --impls tfstyle \
            --sizes "$group" --steps 1 --repeats 1 --warmup 0 --remat="$remat" --label memory
    done
done

failures=$(grep -c '"rc": [1-9]' "$out/checks.jsonl")
echo "gpu_check: $failures check(s) failed; JSON lines in $out" >&2
exit "$failures"
