#!/usr/bin/env bash
# The wheels benchmarks/gpu_check.sh needs on the device machine (python 3.12, x86-64), into .whl/
# (git-ignored through .git/info/exclude; carry it: run(command=..., carry=[".whl"])). The machine's
# image has torch, numpy, scipy, matplotlib, typer, pyyaml, h5py, safetensors, torchdiffeq, filelock,
# scikit-learn and tqdm; it lacks pydantic. PyMFEM (102 MB) is left out: it exceeds what travels.
set -eu
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> "$(git rev-parse --git-path info/exclude)"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl \
    pydantic==2.14.4 pydantic_core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing_extensions==4.16.0
ls -la .whl
