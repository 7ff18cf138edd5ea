#!/usr/bin/env bash
# The GPU checks and benchmarks in one short run, for a session that is lent a GPU machine
# (its python3 holds a CUDA build of torch; it cannot fetch packages). About 6 minutes on an H100 (a guess:
# never run yet); give it timeout_s=600.
#
# Prepare here, once, from the repository root (the two pure-Python wheels the device image lacks):
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 -d .whl mnist1d==0.0.2.post1 submitit==1.5.4
# Then run it there with `.whl` carried:  bash benchmarks/gpu_check.sh
# Logs go to $OUT (the device tool's folder) or ./gpu_check; put the figures in README's Performance.
set -euo pipefail
out=${OUT:-gpu_check}
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/lth-site .whl/*.whl
    export PYTHONPATH=/tmp/lth-site
fi
export PYTHONPATH=$PWD/src:${PYTHONPATH:-} PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" | tee -a "$out/gpu.txt"
# the device-parametrized tests (tests/conftest.py DEVICES), on CUDA only
python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_train.py tests/test_replicas.py 2>&1 | tee "$out/tests.txt"
python3 benchmarks/gpu_resnet20.py --steps 200 --repeats 3 2>&1 | tee "$out/gpu_resnet20.txt"
python3 benchmarks/interpolation.py --device cuda --repeats 3 2>&1 | tee "$out/interpolation.txt"
python3 benchmarks/replicas.py --device cuda --steps 200 --repeats 3 --cache /tmp/lth-cache 2>&1 | tee "$out/replicas.txt"
