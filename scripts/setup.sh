#!/usr/bin/env bash
# Fresh-machine set-up: a Vulkan loader + driver Dawn accepts (Mesa >= 24 lavapipe on Debian bookworm), npm ci, build.
set -euo pipefail
cd "$(dirname "$0")/.."

mesa_ok() {
  local v
  v=$(dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null || true)
  [ -n "$v" ] && dpkg --compare-versions "$v" ge 24
}

if [ "${GRAFT_SKIP_APT:-}" != 1 ] && command -v apt-get >/dev/null 2>&1; then
  if ! dpkg -s libvulkan1 >/dev/null 2>&1 || ! mesa_ok; then
    echo "setup: installing libvulkan1 and mesa-vulkan-drivers (lavapipe) from bookworm-backports"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    if [ -f /etc/apt/sources.list.d/debian.sources ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
      # Same mirror as the first stanza of the existing sources, with the backports suite.
      awk 'BEGIN{RS="";ORS="\n\n"} NR==1{sub(/Suites:[^\n]*/,"Suites: bookworm-backports"); print}' \
        /etc/apt/sources.list.d/debian.sources | $SUDO tee /etc/apt/sources.list.d/backports.sources >/dev/null
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libvulkan1 >/dev/null
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
  fi
fi

# Fashion-MNIST (IDX files in /usr/share/datasets/fashion-mnist) for the data tests and the main job.
if [ "${GRAFT_SKIP_APT:-}" != 1 ] && command -v apt-get >/dev/null 2>&1 && [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # npm ci refuses a lock file without other platforms' optional packages (e.g. @deno/darwin-arm64),
  # which a registry mirror serving only this platform cannot resolve; npm install honours the lock
  # and skips them.
  npm ci --no-audit --no-fund || npm install --no-audit --no-fund
fi
npm run build
