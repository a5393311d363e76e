# dgram_peer.py: the host side of guest_kernel.sh's datagram case, run under
# vmci-vsock-run --host.
#   dgram_peer.py answer PORT          answers one datagram with "echo:" + it
#   dgram_peer.py echo PORT COUNT      answers COUNT datagrams with themselves
#   dgram_peer.py ask CID PORT TEXT    sends TEXT and prints the answer
#   dgram_peer.py flood CID PORT       sends a numbered datagram every 20 ms
#                                      (refusals ignored: CID may not exist
#                                      yet) until one comes back; 60 s at most
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "vsock-run", "guard"))
import under_launcher  # noqa: E402,F401  (before any AF_VSOCK socket)

import socket

s = socket.socket(socket.AF_VSOCK, socket.SOCK_DGRAM)
s.settimeout(60)
if sys.argv[1] == "answer":
    s.bind((socket.VMADDR_CID_ANY, int(sys.argv[2])))
    print("ready", flush=True)
    data, addr = s.recvfrom(65536)
    print("host got", data, "from", addr, flush=True)
    s.sendto(b"echo:" + data, addr)
elif sys.argv[1] == "echo":
    s.bind((socket.VMADDR_CID_ANY, int(sys.argv[2])))
    print("ready", flush=True)
    for _ in range(int(sys.argv[3])):
        data, addr = s.recvfrom(65536)
        s.sendto(data, addr)
    print("echoed", sys.argv[3], flush=True)
elif sys.argv[1] == "flood":
    s.settimeout(0.02)
    target = (int(sys.argv[2]), int(sys.argv[3]))
    print("ready", flush=True)
    sent = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            s.sendto(b"early-%d" % sent, target)
            sent += 1
        except OSError:
            pass
        try:
            data, addr = s.recvfrom(65536)
        except socket.timeout:
            continue
        print("host got", data, "back after sending", sent, flush=True)
        sys.exit(0)
    print("no answer after sending", sent, flush=True)
    sys.exit(1)
else:
    s.sendto(sys.argv[4].encode(), (int(sys.argv[2]), int(sys.argv[3])))
    data, addr = s.recvfrom(65536)
    print("host got", data, "from", addr, flush=True)
