#!/bin/bash
# hostpeer_metrics_test.sh HOSTPEER TEST_PEER: runs `vmci-hostpeer --metrics`
# on a free loopback port with a host and a guest connected, scrapes
# /metrics with curl and checks it with `promtool check metrics`; then the
# host sends datagrams and a second scrape must show the counters moved by
# exactly that much. Other paths and methods get 404 and 405, and a client
# that sends garbage or never finishes its request does not stop the next
# scrape. Exits 77 (skipped) without promtool or curl.
set -euo pipefail
hostpeer=$1 test_peer=$2
for tool in promtool curl; do
  command -v $tool >/dev/null || { echo "$tool is not installed: skipped"; exit 77; }
done
dir=$(mktemp -d)
hostpeer_pid=
cleanup() {
  kill $(jobs -p) $hostpeer_pid 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# Port 0: the kernel picks a free one, and hostpeer logs which.
exec 3< <(exec "$hostpeer" --socket "$dir/hp.sock" --metrics 127.0.0.1:0 --ready-fd 4 \
            4>&1 >/dev/null 2>"$dir/hostpeer.log")
hostpeer_pid=$!
read -r -t 10 socket <&3 || { echo "hostpeer did not start:"; cat "$dir/hostpeer.log"; exit 1; }
address=$(sed -n 's|.*metrics on http://\([^/]*\)/metrics.*|\1|p' "$dir/hostpeer.log")
[ -n "$address" ] || { echo "hostpeer did not log where the metrics are:"; cat "$dir/hostpeer.log"; exit 1; }
url=http://$address/metrics
echo "metrics at $url"

. "$(dirname "$0")/../lib/test_peer_fifo.sh"
scrape() {  # scrape FILE: GET /metrics into FILE, checked by promtool
  curl -fsS --max-time 5 -o "$1" -D "$1.headers" "$url"
  grep -qi '^content-type: text/plain; version=0.0.4' "$1.headers" \
    || { echo "$1: not the text format:"; cat "$1.headers"; exit 1; }
  local lint
  lint=$(promtool check metrics <"$1" 2>&1) || { echo "promtool check metrics: $lint"; exit 1; }
  [ -z "$lint" ] || { echo "promtool check metrics: $lint"; exit 1; }
}
value() {  # value FILE SAMPLE: the value of the sample line that starts with SAMPLE
  awk -v s="$2" 'index($0, s " ") == 1 { print $NF; found = 1 } END { if (!found) print "none" }' "$1"
}

start_peer host
start_peer guest
answers host "connect $dir/hp.sock host" "0 2"
answers host "create 4242" "0 2:4242"
answers guest "connect $dir/hp.sock guest 77" "0 77"
answers guest "create 4243" "0 77:4243"
answers guest "send 77:4243 2:4242 68656c6c6f" 29
answers host "next 5000" "datagram 2:4242 77:4243 68656c6c6f"

scrape "$dir/first"
echo "first scrape: $(wc -l <"$dir/first") lines, promtool check metrics: passed"
guest='{connection="2",cid="77",role="guest"}'
host='{connection="1",cid="2",role="host"}'
expect() {  # expect FILE SAMPLE VALUE
  local got
  got=$(value "$1" "$2")
  [ "$got" = "$3" ] || { echo "$1: $2 is $got, not $3"; grep -F "${2%%\{*}" "$1"; exit 1; }
}
expect "$dir/first" 'vmci_hostpeer_connections{role="guest"}' 1
expect "$dir/first" 'vmci_hostpeer_connections{role="host"}' 1
expect "$dir/first" vmci_hostpeer_connections_admitted_total 2
[ "$(value "$dir/first" "vmci_hostpeer_context_datagrams_received_total$host")" -ge 1 ] \
  || { echo "the host's datagram is not counted"; exit 1; }
for metric in process_cpu_seconds_total process_resident_memory_bytes process_open_fds \
              process_start_time_seconds; do
  [ "$(value "$dir/first" $metric)" != none ] || { echo "no $metric"; exit 1; }
done

# The guest's next datagrams to 2:4242 take the lane hostpeer granted it
# (a fast path hostpeer does not count); so do the host's to the guest
# after the first, which hostpeer routes and answers with a lane of its
# own. Traffic: 10 of those, and one refused (no handle 2:9999).
expect "$dir/first" 'vmci_hostpeer_datagram_handle_fast_path_grants{handle="2:4242"}' 1
for i in $(seq 10); do
  answers host "send 2:4242 77:4243 0102030405060708" 32
  answers guest "next 5000" "datagram 77:4243 2:4242 0102030405060708"
done
refused=$(ask guest "send 77:4243 2:9999 00")
[ "$refused" -lt 0 ] || { echo "a datagram to 2:9999 was not refused: $refused"; exit 1; }

# A client that sends garbage, and one that never finishes its request,
# are both connected while the next scrape is taken.
exec 5<>"/dev/tcp/${address%:*}/${address##*:}"
printf '\x01\x02garbage\r\n\r\n' >&5
exec 6<>"/dev/tcp/${address%:*}/${address##*:}"
printf 'GET /metr' >&6
head -c 12 <&5 | grep -q '^HTTP/1.1 400' || { echo "garbage was not answered 400"; exit 1; }
scrape "$dir/second"
exec 5>&- 6>&-
moved() {  # moved SAMPLE BY: the sample grew by exactly BY between the scrapes
  local before after
  before=$(value "$dir/first" "$1")
  after=$(value "$dir/second" "$1")
  [ "$after" = $((before + $2)) ] || { echo "$1: $before then $after, not +$2"; exit 1; }
}
moved "vmci_hostpeer_context_datagrams_sent_total$host" 1
moved "vmci_hostpeer_context_bytes_sent_total$host" 32
moved "vmci_hostpeer_context_datagrams_received_total$guest" 1
moved "vmci_hostpeer_context_bytes_received_total$guest" 32
moved "vmci_hostpeer_context_datagrams_sent_total$guest" 1
moved "vmci_hostpeer_context_bytes_sent_total$guest" 25
moved "vmci_hostpeer_context_refusals_total$guest" 1
moved vmci_hostpeer_datagrams_routed_total 1
status=$(grep -o 'vmci_hostpeer_refusals_total{status="[A-Z_]*"} 1' "$dir/second" || true)
[ -n "$status" ] || { echo "the refusal is not counted by status"; grep refusals "$dir/second"; exit 1; }
echo "after 10 datagrams (9 through the host's lane) and a refusal:"
grep -E "^vmci_hostpeer_(datagrams_routed_total|context_(datagrams|bytes)_(sent|received)_total)" "$dir/first" | sed 's/^/  first:  /'
grep -E "^vmci_hostpeer_(datagrams_routed_total|context_(datagrams|bytes)_(sent|received)_total)" "$dir/second" | sed 's/^/  second: /'
echo "  $status"

code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
[ "$(code "http://$address/")" = 404 ] || { echo "/ is not 404"; exit 1; }
[ "$(code -X POST "$url")" = 405 ] || { echo "POST is not 405"; exit 1; }

echo quit >&"$guest_fd"
echo quit >&"$host_fd"
grep -q "error\|critical" "$dir/hostpeer.log" && { echo "hostpeer logged errors:"; cat "$dir/hostpeer.log"; exit 1; }
echo "metrics: scraped, checked by promtool, counters moved with the traffic"
