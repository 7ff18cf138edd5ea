#!/usr/bin/env bash
# The GPU checks and benchmarks in one short run, for a session that is lent a GPU machine
# (its python3 holds a CUDA build of torch; it cannot fetch packages). Each part has its own time
# limit, so a part that hangs or fails costs only its share: 274 s on an H200 on 2026-11-27 (before the two
# CUDA-graph variants of part 2 were added; give it timeout_s=590).
#
# Prepare here, once, from the repository root (the two pure-Python wheels the device image lacks):
#   mkdir -p .git/info && echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl mnist1d==0.0.2.post1 submitit==1.5.4
# Then run it there with `.whl` carried:  bash benchmarks/gpu_check.sh
# Logs go to $OUT (the device tool's folder) or ./gpu_check; put the figures in docs/performance.md.
set -uo pipefail
out=${OUT:-gpu_check}
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/lth-site .whl/*.whl
    export PYTHONPATH=/tmp/lth-site
fi
export PYTHONPATH=$PWD/src:$PWD/tests:${PYTHONPATH:-} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
part() {  # part NAME SECONDS COMMAND...: run with a time limit, log to $out/NAME.txt, never stop the script
    local name=$1 limit=$2; shift 2
    echo "== $name ($(date +%T), limit ${limit}s): $*" | tee -a "$out/log.txt"
    local began=$SECONDS
    timeout -k 10 "$limit" "$@" > "$out/$name.txt" 2>&1
    local rc=$?
    echo "== $name rc=$rc in $((SECONDS - began))s" | tee -a "$out/log.txt"
    tail -n 25 "$out/$name.txt"
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name())"
  nproc; } 2>&1 | tee "$out/gpu.txt"
# 1. the device-parametrized tests (tests/conftest.py DEVICES), on CUDA
part tests 120 python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_train.py tests/test_replicas.py \
    tests/test_init_pruning.py tests/test_branches_stability.py
# 2. ResNet-20 it/s: the per-sample DataLoader loop, lth fp32, bf16, bf16 + compile, CUDA graphs (fp32, bf16)
part resnet20 180 python3 benchmarks/gpu_resnet20.py --steps 300 --repeats 2 --variants dataloader,fp32,bf16,bf16+compile,fp32+graphs,bf16+graphs
# 3. stacked replicas against sequential runs: the MLPs, then the conv nets (grouped convolutions), eager and compiled
part replicas 100 python3 benchmarks/replicas.py --device cuda --presets mnist1d_mlp,lenet300_mnist --ks 1,2,4,8,16 \
    --steps 200 --repeats 2 --cache /tmp/lth-cache
part replicas_conv 150 python3 benchmarks/replicas.py --device cuda --presets resnet20_cifar10,vgg16_cifar10 \
    --ks 1,2,4,8,16 --steps 50 --repeats 1
part replicas_conv_compiled 150 python3 benchmarks/replicas.py --device cuda --presets resnet20_cifar10 --compile \
    --ks 1,8 --steps 100 --repeats 1
# 3b. the [SCALE] ResNet-20 study of 3 seeds: one by one against stacked, from measured step rates
part study_time 60 bash -c "cd benchmarks && python3 study_time.py --device cuda --preset resnet20_cifar10 --seeds 3 --k 8"
# 4. one real IMP level of resnet20_cifar10 through the CLI, then ls and report
cli() {
    python3 benchmarks/synthetic_cifar10.py /tmp/cifar || return
    local began=$SECONDS
    python3 -m lth imp --preset resnet20_cifar10 --data-root /tmp/cifar --iterations 2000it --levels 1 \
        --precision bf16 --store /tmp/store --quiet || return
    echo "imp wall $((SECONDS - began))s"
    python3 -m lth ls --store /tmp/store &&
    python3 -m lth report /tmp/store --out /tmp/report && cp /tmp/report/report.md "$out/report.md"
}
export -f cli; export out
part cli 110 bash -c cli
# 5. the stacked 30-point interpolation against one point at a time
part interpolation 50 python3 benchmarks/interpolation.py --device cuda --repeats 3
