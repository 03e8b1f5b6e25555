#!/usr/bin/env bash
# The test command (and CI's, via .ci/run): installs missing dependencies, builds Kiln (Release,
# Ninja), runs the whole ctest suite, then installs into a temporary prefix and builds and runs
# tests/consumer against it, proving find_package(kiln CONFIG) works for an outside project.
# Environment: KILN_BUILD_DIR (default build/release), KILN_ARCH (default native), KILN_JOBS.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

build=${KILN_BUILD_DIR:-build/release}
jobs=${KILN_JOBS:-$(nproc)}

bash scripts/install-deps.sh

echo "==> configure ($build)"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_ARCH="${KILN_ARCH-native}" \
  -DKILN_BUILD_TESTS=ON -DKILN_BUILD_BENCHMARKS=ON -DKILN_BUILD_EXAMPLES=ON -DKILN_BENCH_TORCH=OFF
echo "==> build"
cmake --build "$build" -j "$jobs"
if command -v ccache >/dev/null; then ccache --show-stats | grep -Ei 'hits|misses' || true; fi

echo "==> ctest"
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 300

echo "==> install + outside consumer project"
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix/install"
cmake -S tests/consumer -B "$prefix/consumer-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix/install"
cmake --build "$prefix/consumer-build" -j "$jobs"
"$prefix/consumer-build/kiln_consumer"

echo "==> all tests passed"
