"""echo.py: a vSockets echo with Python's own socket module, as a user
would write it (run it under vmci-vsock-run).

  echo.py serve PORT          accepts one connection and echoes it to its end
  echo.py ask CID PORT BYTES  sends BYTES random bytes, reads them back, compares
  echo.py refused CID PORT [TIMES]
                              a non-blocking connect where nobody listens:
                              EINPROGRESS, then writable, then SO_ERROR ECONNRESET
                              (TIMES times, default 1; each on a new socket)
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "guard"))
import under_launcher  # noqa: E402,F401  (before any AF_VSOCK socket)

import errno
import hashlib
import select
import socket


def serve(port):
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as listener:
        listener.bind((socket.VMADDR_CID_ANY, port))
        listener.listen(1)
        print("listening on", listener.getsockname(), flush=True)
        conn, peer = listener.accept()
        with conn:
            print("accepted", peer, "local", conn.getsockname(), flush=True)
            total = 0
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
                total += len(data)
            print("echoed", total, "bytes", flush=True)


def ask(cid, port, size):
    data = os.urandom(size)
    with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as s:
        s.connect((cid, port))
        print("connected to", s.getpeername(), "from", s.getsockname(), flush=True)
        got = bytearray()
        sent = 0
        s.setblocking(True)
        # Write and read in turn, so that neither side's buffers fill.
        while sent < size or len(got) < size:
            if sent < size:
                n = s.send(data[sent:sent + 65536])
                sent += n
            if len(got) < sent:
                got += s.recv(65536)
        s.shutdown(socket.SHUT_WR)
        if s.recv(1) != b"":
            sys.exit("more than was sent came back")
    if bytes(got) != data:
        sys.exit("the echo differs")
    print("echo of", size, "bytes intact, sha256", hashlib.sha256(data).hexdigest()[:16], flush=True)


def refused(cid, port, times):
    for _ in range(times):
        with socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM) as s:
            s.setblocking(False)
            started = s.connect_ex((cid, port))
            if started != errno.EINPROGRESS:
                sys.exit("connect_ex: %s, not EINPROGRESS" % errno.errorcode.get(started, started))
            _, writable, _ = select.select([], [s], [], 10)
            if not writable:
                sys.exit("the connect never finished")
            # Writable means finished: SO_ERROR must already say how.
            error = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error != errno.ECONNRESET:
                sys.exit("SO_ERROR: %s, not ECONNRESET" % errno.errorcode.get(error, error))
    print("non-blocking connect to port", port, "x", times,
          ": EINPROGRESS, then SO_ERROR ECONNRESET", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "refused":
        refused(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 1)
    else:
        ask(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
