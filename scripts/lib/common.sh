# Shared by scripts/demo and scripts/test: dependencies, configure, build.
# Source it; it defines functions only.

# The build's, then the real vsock programs that vsock-run's tests run, and
# tshark, which reads the captures back, and tmux (vmci-ctl in a real terminal).
VMCI_PACKAGES=(cmake ninja-build g++ pkg-config libboost-dev nlohmann-json3-dev
               libspdlog-dev libcli11-dev libgtest-dev
               python3 socat ncat qemu-guest-agent nbdkit libnbd-bin tshark tmux prometheus)

# Installs the Debian packages that are missing (with sudo when not root).
vmci_ensure_packages() {
  local missing=() pkg
  for pkg in "${VMCI_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "==> installing Debian packages: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Another apt (an unattended upgrade, a second build) may hold the lock a while.
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
}

# Configures (if needed) and builds a CMake preset; extra args are targets.
vmci_build() {
  local preset="$1"; shift
  local dir="build/$preset"
  if [ ! -f "$dir/build.ninja" ]; then
    echo "==> configuring ($preset)"
    cmake --preset "$preset" >/dev/null
  fi
  echo "==> building ($preset)"
  local targets=()
  for t in "$@"; do targets+=(--target "$t"); done
  cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
}
