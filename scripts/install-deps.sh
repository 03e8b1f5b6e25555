#!/usr/bin/env bash
# Installs Kiln's build dependencies from Debian 12 packages, only the ones that are missing.
# apt is not touched when everything is present; installing needs root. Used by test.sh and demo.sh.
set -euo pipefail

# ocl-icd-opencl-dev: Debian's libdnnl-dev is built with the OpenCL GPU runtime and its CMake
# config calls find_package(OpenCL REQUIRED), so find_package(dnnl) fails without it.
# zlib1g-dev: examples/train_digits reads the gzipped digits CSV (the library does not use it).
# llvm-19-tools: FileCheck, for the IR golden tests.
packages=(build-essential cmake ninja-build ccache llvm-19-dev llvm-19-tools libdnnl-dev
          ocl-icd-opencl-dev libfmt-dev libgtest-dev libbenchmark-dev zlib1g-dev)

is_installed() {
  [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

# True when apt knows an installable version of the package.
has_candidate() {
  local candidate
  candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

# llvm-19 reached bookworm's main archive in a point release (19.1.7-3~deb12u1); mirrors or
# snapshots from before that lack it, and there apt.llvm.org's bookworm repository provides it.
add_llvm_apt_repo() {
  echo "install-deps: llvm-19-dev is not in the configured archives; adding apt.llvm.org"
  if ! is_installed ca-certificates || ! is_installed curl; then
    apt-get install -y -q ca-certificates curl
  fi
  install -d -m 0755 /etc/apt/keyrings
  curl -fsSL https://apt.llvm.org/llvm-snapshot.gpg.key -o /etc/apt/keyrings/apt.llvm.org.asc
  cat >/etc/apt/sources.list.d/llvm-toolchain-bookworm-19.sources <<'EOF'
Types: deb
URIs: http://apt.llvm.org/bookworm/
Suites: llvm-toolchain-bookworm-19
Components: main
Signed-By: /etc/apt/keyrings/apt.llvm.org.asc
EOF
  apt-get update -q
}

missing=()
for p in "${packages[@]}"; do
  is_installed "$p" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all dependencies present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (sudo $0) or install them with apt-get" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
if [[ " ${missing[*]} " == *" llvm-19-dev "* ]] && ! has_candidate llvm-19-dev; then
  add_llvm_apt_repo
fi
apt-get install -y -q "${missing[@]}"
