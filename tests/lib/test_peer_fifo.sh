# test_peer_fifo.sh: drives vmci-test-peer processes line by line from a
# shell test. Source it after setting `dir` (a private directory) and
# `test_peer` (the vmci-test-peer binary).
#
#   start_peer host                      # NAME_fd and NAME_pid are set
#   answers host "connect $sock host" "0 2"
#   got=$(ask host "cid")

start_peer() {  # start_peer NAME: a test peer reading commands from a FIFO
  mkfifo "$dir/$1.in"
  "$test_peer" <"$dir/$1.in" >"$dir/$1.out" &
  eval "${1}_pid=$!"
  exec {fd}>"$dir/$1.in"
  eval "${1}_fd=$fd"
}

ask() {  # ask NAME LINE: sends LINE, prints the answer (the peer's next line)
  local fd_var=${1}_fd lines
  lines=$(wc -l <"$dir/$1.out")
  echo "$2" >&"${!fd_var}"
  for _ in $(seq 200); do
    [ "$(wc -l <"$dir/$1.out")" -gt "$lines" ] && break
    sleep 0.05
  done
  sed -n "$((lines + 1))p" "$dir/$1.out"
}

answers() {  # answers NAME LINE EXPECTED: exits 1 unless the answer is EXPECTED
  local got
  got=$(ask "$1" "$2")
  [ "$got" = "$3" ] || { echo "$1: '$2' answered '$got', not '$3'"; exit 1; }
}
