#!/usr/bin/env bash
# The demo command: installs missing dependencies, builds Kiln (Release, Ninja) and runs the
# examples: examples/first_tensor, then examples/custom_layer (the JIT headline). Shares
# build/release with scripts/test.sh.
# Environment: KILN_BUILD_DIR (default build/release), KILN_ARCH (default native), KILN_JOBS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=${KILN_BUILD_DIR:-build/release}
jobs=${KILN_JOBS:-$(nproc)}

bash scripts/install-deps.sh

echo "==> configure ($build)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_ARCH="${KILN_ARCH-native}" \
  -DKILN_BUILD_EXAMPLES=ON
echo "==> build"
cmake --build "$build" -j "$jobs" --target first_tensor custom_layer

echo "==> run examples/first_tensor"
"$build/examples/first_tensor/first_tensor"

echo "==> run examples/custom_layer"
"$build/examples/custom_layer/custom_layer"
