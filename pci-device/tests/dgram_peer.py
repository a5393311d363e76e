# dgram_peer.py: the host side of guest_kernel.sh's datagram case, run under
# vmci-vsock-run --host.
#   dgram_peer.py answer PORT          answers one datagram with "echo:" + it
#   dgram_peer.py echo PORT COUNT      answers COUNT datagrams with themselves
#   dgram_peer.py ask CID PORT TEXT    sends TEXT and prints the answer
import os
import sys

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
else:
    s.sendto(sys.argv[4].encode(), (int(sys.argv[2]), int(sys.argv[3])))
    data, addr = s.recvfrom(65536)
    print("host got", data, "from", addr, flush=True)
