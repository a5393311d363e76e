"""under_launcher: imported first by the project's Python test programs that
open AF_VSOCK sockets. On these machines the kernel's vsock leads outside the
project, so they run only under vmci-vsock-run, whose seccomp filter keeps
the kernel's AF_VSOCK out of reach (the launcher sets VMCI_VSOCK_BROKER after
putting its filter on). Anywhere else the import ends the program, status 2.

    import under_launcher  # noqa: F401  (first, before socket.AF_VSOCK)
"""
import os
import sys


def _filtered():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Seccomp:"):
                return line.split()[1] == "2"
    return False


if not os.environ.get("VMCI_VSOCK_BROKER") or not _filtered():
    sys.stderr.write("%s: refusing to run outside vmci-vsock-run (the kernel's AF_VSOCK must not "
                     "be reached)\n" % sys.argv[0])
    sys.exit(2)
