#!/usr/bin/env bash
# Run the CUDA cells of the test suite and the makemore device x dtype matrix on a GPU machine.
# Usage (from the repository root, venv active): bash benchmarks/gpu_smoke.sh
# Exits non-zero if CUDA is absent, a CUDA test fails, or a matrix cell fails.
set -euo pipefail
python -c "import torch, sys; ok = torch.cuda.is_available(); print('cuda:', ok, torch.__version__, torch.cuda.get_device_name(0) if ok else ''); sys.exit(0 if ok else 3)"
PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 python -m pytest -q -rs tests/test_devices.py tests/test_reference.py tests/test_function.py -k "cuda or low_precision or cross"
for dtype in float64 float32 float16 bfloat16; do set -- "$@" --dtype "$dtype"; done
gradcheck-kit check examples/makemore --case makemore-ex1 --device cpu --device cuda --cross --rule reference "$@" --pivot status
gradcheck-kit check examples/makemore --case makemore-ex1 --device cpu --device cuda --cross --rule reference "$@" --csv "${OUT:-.}/gpu_matrix.csv" > /dev/null
