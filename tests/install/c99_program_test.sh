#!/usr/bin/env bash
# Installs the build into a temporary prefix, then builds and runs what a
# user would: c99_program.c with
#   cc -std=c99 app.c $(pkg-config --cflags --libs vmci-guest)
# and c99_vsock_program.c with pkg-config's vmci-vsock, against a
# vmci-hostpeer daemon, and cmake-consumer/ with
#   find_package(vmci-hostpeer)  ->  vmci::guest, vmci::hostpeer
# It also checks the public header boundary: every installed header compiles
# alone against the installed tree (C++20; the C API's headers also as C99),
# and the internal headers (vmci/trace/, vmci/proto/ but for the four that
# public headers include) are not installed.
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

inc="$work/prefix/include"
[ ! -e "$inc/vmci/trace" ] || { echo "internal vmci/trace/ headers were installed" >&2; exit 1; }
proto_installed=$(cd "$inc/vmci/proto" && ls | tr '\n' ' ')
[ "$proto_installed" = "frame.h queue.h subscriptions.h wake_word.h " ] ||
  { echo "vmci/proto/ holds more or less than the four headers public ones include: $proto_installed" >&2; exit 1; }
while IFS= read -r header; do
  rel=${header#"$inc"/}
  printf '#include <%s>\n' "$rel" > "$work/one.cc"
  c++ -std=c++20 -fsyntax-only -Wall -Wextra -Werror -I"$inc" "$work/one.cc" ||
    { echo "installed header $rel does not compile alone against the installed tree" >&2; exit 1; }
  if grep -q 'extern "C"' "$header"; then  # the C API's headers
    printf '#include <%s>\nint main(void) { return 0; }\n' "$rel" > "$work/one.c"
    cc -std=c99 -pedantic -fsyntax-only -Wall -Wextra -Werror -I"$inc" "$work/one.c" ||
      { echo "installed C header $rel does not compile alone as C99" >&2; exit 1; }
  fi
done < <(find "$inc" -name '*.h' | sort)

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
"$work/consumer/helpers"
