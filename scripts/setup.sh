#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian 12 machine. Idempotent: a second run
# checks and returns in a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  libcurl4-openssl-dev libssl-dev nlohmann-json3-dev libyaml-cpp-dev libcli11-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev libbenchmark-dev gcovr
  clang-14 libclang-rt-14-dev
  openjdk-17-jre-headless
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep "install ok installed" > /dev/null || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

PYTHON=${PYTHON:-python3}
stamp=".setup-stamp-$(sha1sum requirements.txt | cut -c1-12)-$($PYTHON -c 'import sys;print(sys.version_info[:2] >= (3, 9))')"
if [ ! -f "build/$stamp" ] || ! $PYTHON -c 'import pyarrow' 2>/dev/null; then
  echo "setup: installing Python packages from requirements.txt"
  $PYTHON -m pip install -q --disable-pip-version-check --root-user-action=ignore -r requirements.txt
  mkdir -p build && touch "build/$stamp"
fi
