#!/usr/bin/env python3
"""guest_module.py VMCI_VM TEST_PEER QP_STREAM_PEER CASE: the guest-side test
module (pci-device/guest-module, vmci_test.ko) in Debian's real 6.1 guest
kernel drives the kernel's own VMCI API, against the hostpeer named by
VMCI_HOSTPEER_SOCKET (with_hostpeer.sh starts one); host endpoints are
vmci-test-peer (a host connection driven line by line) and
vmci-qp-stream-peer. The module is built at test time
(scripts/lib/guest-module-build, cached by kernel release).

  dgram-both-ways  host 2:5000 -> guest handle 42:7000 (text and a 60000-byte
                   stream, checked by FNV-1a), then the guest's answers back
  doorbell-guest-rings-host
                   a host doorbell rung 100 times from the guest: 1..100
                   callbacks; a ring of a doorbell nobody has is refused
  doorbell-host-rings-guest
                   the guest's doorbell rung 100 times by the host: the rings
                   coalesce through the guest's notify bitmap into 1..100
                   callbacks; one more ring after that is one more callback
  ctx-removed      the host subscribes CTX_REMOVED; the VM is killed (SIGKILL
                   to vmci-vm) while the module holds a handle, a doorbell and
                   a subscription: the event names the guest's context
  qp-guest-creates the guest allocates two pairs with the host as peer and
                   subscribes QP_PEER_ATTACH/DETACH; the host attaches to each
                   and 16 MiB go each way, checked byte for byte by the reader;
                   the guest sees ATTACH and DETACH for each pair
  qp-host-creates  the host allocates a pair for context 42; the guest attaches
                   and reads 16 MiB from it

The queue pairs' memory is the guest kernel's own pages (the PPNs of the
real driver's alloc hypercall; issue 16's guest-supplied queue-pair memory).
Exit 77 (skipped) when QEMU is not installed.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

CID = 42
MiB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))


def fnv32(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def byte_stream(seed, n):
    """tests/support/byte_stream.h's stream (SplitMix64, little-endian words)."""
    out = bytearray()
    state = seed
    mask = (1 << 64) - 1
    while len(out) < n:
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        out += (z ^ (z >> 31)).to_bytes(8, "little")
    return bytes(out[:n])


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


class Guest:
    """vmci-vm with the module and COMMAND (a shell script); the console is collected."""

    def __init__(self, vm, ko, script, workdir, timeout=150):
        path = os.path.join(workdir, "guest.sh")
        with open(path, "w") as f:
            f.write("insmod /vmci_test.ko || exit 3\n")
            f.write("t() { sh /bin/vmci-test-ctl \"$@\"; }\n")
            f.write(script)
        ctl = os.path.join(SOURCE, "pci-device", "guest-module", "vmci-test-ctl")
        self.lines = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(
            [vm, "--cid", str(CID), "--timeout", str(timeout), "--file", ko + "=/vmci_test.ko",
             "--file", ctl, "--file", path + "=/guest.sh", "--", "sh", "/guest.sh"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\r\n")
            with self.cond:
                self.lines.append(line)
                self.cond.notify_all()

    def wait_for(self, text, timeout=120):
        """The first console line containing text; Failure when the guest ends first."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise Failure("the guest ended without printing %r" % text)
                left = deadline - time.monotonic()
                check(left > 0, "no %r on the guest's console within %d s" % (text, timeout))
                self.cond.wait(min(left, 0.5))

    def answer(self, command, timeout=120):
        """The module's first answer line after 'vmci-test> COMMAND'."""
        self.wait_for("vmci-test> " + command, timeout)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i, line in enumerate(self.lines):
                    if line == "vmci-test> " + command and i + 1 < len(self.lines):
                        return self.lines[i + 1]
                left = deadline - time.monotonic()
                check(left > 0, "no answer to %r" % command)
                self.cond.wait(min(left, 0.5))

    def finish(self, timeout=150):
        status = self.proc.wait(timeout)
        self.reader.join(5)
        return status

    def console(self):
        """The console without the kernel's timestamped lines, but the VMCI ones."""
        with self.cond:
            return "\n".join(l for l in self.lines
                             if not l.startswith("[") or "vmci" in l.lower())


class HostPeer:
    """vmci-test-peer connected as the host."""

    def __init__(self, binary):
        self.proc = subprocess.Popen([binary], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        reply = self.ask("connect %s host" % os.environ["VMCI_HOSTPEER_SOCKET"])
        check(reply.startswith("0 "), "host connect: " + reply)

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        reply = self.proc.stdout.readline().strip()
        print("host> %s\n%s" % (line if len(line) < 120 else line[:117] + "...",
                                reply if len(reply) < 200 else reply[:197] + "..."))
        return reply

    def drain(self, wait_ms=500):
        items = []
        while True:
            item = self.ask("next %d" % wait_ms)
            if item == "none":
                return items
            items.append(item)

    def close(self):
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def dgram_both_ways(env):
    host = HostPeer(env.test_peer)
    reply = host.ask("create 5000")
    check(reply == "0 2:5000", "host handle: " + reply)
    guest = env.guest("""
t dg-create 7000 || exit 1
echo guest-ready
t dg-recv 7000 2 60000 || exit 1
t dg-send 7000 2:5000 hello-from-the-guest || exit 1
t dg-send-size 7000 2:5000 60000 7 || exit 1
t dg-destroy 7000 || exit 1
t dg-send 7000 2:5000 after-destroy && exit 1
exit 0
""")
    guest.wait_for("guest-ready")
    text = b"hello-from-the-host"
    r1 = host.ask("send 2:5000 %d:7000 %s" % (CID, text.hex()))
    big = byte_stream(9, 60000)
    r2 = host.ask("send 2:5000 %d:7000 %s" % (CID, big.hex()))
    check(not r1.startswith("-") and not r2.startswith("-"), "host sends: %s %s" % (r1, r2))
    status = guest.finish()
    out = guest.console()
    print(out)
    check(status == 0, "the guest's script failed (%d)" % status)
    # What the guest recorded: source, size, FNV-1a and the printable head.
    check("datagram 2:5000 %d %08x hello-from-the-host" % (len(text), fnv32(text)) in out,
          "the guest did not record the host's text datagram")
    check("datagram 2:5000 60000 %08x " % fnv32(big) in out,
          "the guest did not record the 60000-byte datagram intact")
    got = host.drain(2000)
    check(any(g == "datagram 2:5000 %d:7000 %s" % (CID, b"hello-from-the-guest".hex())
              for g in got), "the host did not get the guest's text")
    check(any(g == "datagram 2:5000 %d:7000 %s" % (CID, byte_stream(7, 60000).hex())
              for g in got), "the host did not get the guest's 60000-byte datagram intact")
    check(len(got) == 2, "the host got %d datagrams, expected 2" % len(got))
    host.close()


def doorbell_guest_rings_host(env):
    host = HostPeer(env.test_peer)
    reply = host.ask("db-create any")
    check(reply.startswith("0 2:"), "host doorbell: " + reply)
    host_db = reply.split()[1]
    guest = env.guest("""
t db-notify %(host_db)s 100 || exit 1
t db-notify 2:999999 && exit 1
exit 0
""" % {"host_db": host_db})
    status = guest.finish()
    print(guest.console())
    check(status == 0, "the guest's script failed (%d)" % status)
    got = host.drain(1000)
    check(got and all(g == "doorbell " + host_db for g in got),
          "the host doorbell's callbacks: %r" % got)
    check(len(got) <= 100, "more callbacks than rings")
    print("host doorbell %s: 100 rings from the guest, %d callbacks" % (host_db, len(got)))
    host.close()


def doorbell_host_rings_guest(env):
    host = HostPeer(env.test_peer)
    guest = env.guest("""
t db-create 300 || exit 1
echo guest-doorbell-ready
t db-count %(cid)d:300 1 30000 >/dev/null || exit 1
sleep 2  # the storm's last callbacks run: the count below is final
c=$(t db-count %(cid)d:300 1 30000 | tee /dev/console | sed -n 's/^ok //p')
echo "guest-counted $c"
[ "${c:-0}" -ge 1 ] || exit 1
t db-count %(cid)d:300 $((c + 1)) 30000 || exit 1
t db-destroy %(cid)d:300 || exit 1
t db-destroy %(cid)d:300 && exit 1
exit 0
""" % {"cid": CID})
    guest.wait_for("guest-doorbell-ready")
    reply = host.ask("ring-storm 1 100 %d:300" % CID)
    check(reply.startswith("0 "), "host rings: " + reply)
    line = guest.wait_for("guest-counted", 60)
    first = int((line.split() + ["0"])[1])
    check(1 <= first <= 100, "guest callbacks after 100 rings from the host: %d" % first)
    time.sleep(0.5)  # the guest waits for first+1: one more ring is one more callback
    check(host.ask("ring-storm 1 1 %d:300" % CID).startswith("0 "), "host's last ring")
    status = guest.finish()
    print(guest.console())
    check(status == 0, "the guest's script failed (%d)" % status)
    print("guest doorbell %d:300: 100 rings from the host, %d callbacks, then one more"
          % (CID, first))
    host.close()


def ctx_removed(env):
    host = HostPeer(env.test_peer)
    check(host.ask("subscribe CTX_REMOVED").startswith("0 "), "subscribe")
    guest = env.guest("""
t dg-create 7000 || exit 1
t db-create 300 || exit 1
t event-subscribe QP_PEER_DETACH || exit 1
echo guest-holding
t dg-recv 7000 1 600000
""")
    guest.wait_for("guest-holding")
    guest.proc.send_signal(signal.SIGKILL)
    guest.finish()
    print(guest.console())
    got = host.drain(5000)
    check(any(g.startswith("event ") and g.endswith(" CTX_REMOVED %d" % CID) for g in got),
          "no CTX_REMOVED for %d: %r" % (CID, got))
    # hostpeer holds nothing of the guest: its context id is free again.
    host.close()


def qp_alloc_answer(guest, command):
    answer = guest.answer(command)
    check(answer.startswith("ok "), "the real driver's vmci_qpair_alloc answered %r" % answer)
    return answer


def stream_peer(env, handle, produce, consume, direction, seed, length):
    return subprocess.Popen(
        [env.qp_stream_peer, os.environ["VMCI_HOSTPEER_SOCKET"], "host", handle, str(produce),
         str(consume), direction, str(seed), str(length)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def qp_guest_creates(env):
    size = 16 * MiB
    guest = env.guest("""
t event-subscribe QP_PEER_ATTACH || exit 1
t event-subscribe QP_PEER_DETACH || exit 1
a=$(t qp-alloc 2 262144 65536 | tee /dev/console | sed -n 's/^ok //p')
[ -n "$a" ] || exit 1
echo "guest-pair-out $a"
t qp-write $a %(size)d 11 60000 || exit 1
b=$(t qp-alloc 2 65536 262144 | tee /dev/console | sed -n 's/^ok //p')
[ -n "$b" ] || exit 1
echo "guest-pair-in $b"
t qp-read $b %(size)d 12 60000 || exit 1
t events 4 30000
t qp-detach $a || exit 1
t qp-detach $b || exit 1
exit 0
""" % {"size": size})
    qp_alloc_answer(guest, "qp-alloc 2 262144 65536")
    out_handle = guest.wait_for("guest-pair-out").split()[1]
    reader = stream_peer(env, out_handle, 65536, 262144, "read", 11, size)
    in_handle = guest.wait_for("guest-pair-in", 300).split()[1]
    writer = stream_peer(env, in_handle, 262144, 65536, "write", 12, size)
    r_out, _ = reader.communicate(timeout=300)
    w_out, _ = writer.communicate(timeout=300)
    status = guest.finish(300)
    print(guest.console())
    print("host reader: " + r_out.strip())
    print("host writer: " + w_out.strip())
    check(reader.returncode == 0 and "done %d" % size in r_out, "the host's read of 16 MiB")
    check(writer.returncode == 0 and "done %d" % size in w_out, "the host's write of 16 MiB")
    check(status == 0, "the guest's script failed (%d)" % status)
    out = guest.console()
    for handle in (out_handle, in_handle):
        for event in ("QP_PEER_ATTACH", "QP_PEER_DETACH"):
            check(" %s %s 2" % (event, handle) in out, "the guest saw no %s for %s"
                  % (event, handle))


def qp_host_creates(env):
    size = 16 * MiB
    writer = stream_peer(env, "new", 262144, 65536, "write", 13, size)
    ready = writer.stdout.readline().strip()
    check(ready.startswith("ready 2:"), "host alloc: " + ready)
    handle = ready.split()[1]
    guest = env.guest("""
t qp-alloc 2 65536 262144 %(h)s || exit 1
t qp-read %(h)s %(size)d 13 60000 || exit 1
t qp-detach %(h)s || exit 1
exit 0
""" % {"h": handle, "size": size})
    qp_alloc_answer(guest, "qp-alloc 2 65536 262144 " + handle)
    w_out, _ = writer.communicate(timeout=300)
    status = guest.finish(300)
    print(guest.console())
    print("host writer: " + ready + " " + w_out.strip())
    check(writer.returncode == 0, "the host's write")
    check(status == 0, "the guest's script failed (%d)" % status)


CASES = {
    "dgram-both-ways": dgram_both_ways,
    "doorbell-guest-rings-host": doorbell_guest_rings_host,
    "doorbell-host-rings-guest": doorbell_host_rings_guest,
    "ctx-removed": ctx_removed,
    "qp-guest-creates": qp_guest_creates,
    "qp-host-creates": qp_host_creates,
}


class Env:
    def __init__(self, vm, test_peer, qp_stream_peer, ko, workdir):
        self.vm, self.test_peer, self.qp_stream_peer = vm, test_peer, qp_stream_peer
        self.ko, self.workdir = ko, workdir
        self.guests = []

    def guest(self, script, timeout=150):
        g = Guest(self.vm, self.ko, script, self.workdir, timeout)
        self.guests.append(g)
        return g


def main():
    if len(sys.argv) != 5 or sys.argv[4] not in CASES:
        print(__doc__)
        return 2
    if not shutil.which("qemu-system-x86_64"):
        print("qemu-system-x86_64 missing: skipped")
        return 77
    build = subprocess.run([os.path.join(SOURCE, "scripts", "lib", "guest-module-build")],
                           stdout=subprocess.PIPE, text=True)
    if build.returncode != 0:
        print("guest-module-build failed (%d)" % build.returncode)
        return 1
    ko = build.stdout.strip().splitlines()[-1]
    with tempfile.TemporaryDirectory() as workdir:
        env = Env(sys.argv[1], sys.argv[2], sys.argv[3], ko, workdir)
        try:
            CASES[sys.argv[4]](env)
        except (Failure, subprocess.TimeoutExpired) as e:
            print("FAILED: %s" % e)
            for g in env.guests:
                print("--- guest console ---\n" + g.console())
            return 1
        finally:
            for g in env.guests:
                if g.proc.poll() is None:
                    g.proc.kill()
                    g.proc.wait()
    print("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
