#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs what a
# user would: c99_program.c with
#   cc -std=c99 app.c $(pkg-config --cflags --libs vmci-guest)
# and c99_vsock_program.c with pkg-config's vmci-vsock, against a
# vmci-hostpeer daemon, and cmake-consumer/ with
#   find_package(vmci-hostpeer)  ->  vmci::guest, vmci::hostpeer
# Usage: c99_program_test.sh BUILD_DIR SOURCE_DIR HOSTPEER_BIN
set -euo pipefail
build="$1" src="$2" hostpeer="$3"
work=$(mktemp -d /tmp/vmci-install-test-XXXXXX)
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$work/prefix" >/dev/null
pc=$(dirname "$(find "$work/prefix" -name vmci-guest.pc | head -1)")
export PKG_CONFIG_PATH="$pc"

# Sanitizer builds: the program must link the same runtime.
extra=()
sanitize=$(sed -n 's/^VMCI_SANITIZE:STRING=//p' "$build/CMakeCache.txt")
[ -n "$sanitize" ] && extra=("-fsanitize=$sanitize")

cc -std=c99 -pedantic -Wall -Wextra -Werror "${extra[@]}" "$src/c99_program.c" \
   $(pkg-config --cflags --libs vmci-guest) -o "$work/app"
cc -std=c99 -pedantic -Wall -Wextra -Werror "${extra[@]}" "$src/c99_vsock_program.c" \
   $(pkg-config --cflags --libs vmci-vsock) -o "$work/vsock-app"

"$hostpeer" --socket "$work/hostpeer.sock" --log-level warn &
daemon=$!
for _ in $(seq 200); do [ -S "$work/hostpeer.sock" ] && break; sleep 0.05; done
VMCI_HOSTPEER_SOCKET="$work/hostpeer.sock" "$work/app"
VMCI_HOSTPEER_SOCKET="$work/hostpeer.sock" "$work/vsock-app"

cmake_extra=()
[ -n "$sanitize" ] && cmake_extra=("-DCMAKE_CXX_FLAGS=-fsanitize=$sanitize"
                                   "-DCMAKE_EXE_LINKER_FLAGS=-fsanitize=$sanitize")
cmake -S "$src/cmake-consumer" -B "$work/consumer" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
      -DCMAKE_PREFIX_PATH="$work/prefix" "${cmake_extra[@]}" >/dev/null
cmake --build "$work/consumer" >/dev/null
"$work/consumer/consumer" "$work/consumer.sock"
