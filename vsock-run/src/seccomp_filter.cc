#include "seccomp_filter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <vector>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

namespace vmci::vsock_run {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArch = AUDIT_ARCH_AARCH64;
#else
#error "vmci-vsock-run's filter knows x86-64 and aarch64"
#endif

constexpr uint32_t kErrno(int value) { return SECCOMP_RET_ERRNO | (static_cast<uint32_t>(value) & SECCOMP_RET_DATA); }

// A filter program, written as a list with forward jumps by label.
class Program {
 public:
  void load_arch() { add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch))); }
  void load_nr() { add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr))); }
  // The low 32 bits of the first argument (the family of socket()).
  void load_arg0() { add(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0]))); }
  void ret(uint32_t action) { add(BPF_STMT(BPF_RET | BPF_K, action)); }
  // If the accumulator equals `value`, go on with the next instruction;
  // else skip `skip` instructions.
  void if_equal(uint32_t value, uint8_t skip) { add(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, value, 0, skip)); }
  std::vector<sock_filter>& code() { return code_; }

 private:
  void add(sock_filter f) { code_.push_back(f); }
  std::vector<sock_filter> code_;
};

// socket/socketpair number `nr` of the architecture loaded: AF_VSOCK fails.
void refuse_vsock_family(Program& p, uint32_t nr) {
  p.load_nr();
  p.if_equal(nr, 3);
  p.load_arg0();
  p.if_equal(AF_VSOCK, 1);
  p.ret(kErrno(EAFNOSUPPORT));
}

}  // namespace

bool install_vsock_filter(std::string* error) {
  Program p;
  // The native architecture (x32 calls have the same arch and a marked number).
  p.load_arch();
  const size_t native_check = p.code().size();
  p.if_equal(kNativeArch, 0);  // patched below: skip to the foreign part
  refuse_vsock_family(p, __NR_socket);
  refuse_vsock_family(p, __NR_socketpair);
#if defined(__x86_64__)
  refuse_vsock_family(p, __NR_socket | 0x40000000);      // x32
  refuse_vsock_family(p, __NR_socketpair | 0x40000000);  // x32
#endif
  p.load_nr();
  p.if_equal(__NR_io_uring_setup, 1);
  p.ret(kErrno(ENOSYS));
  p.ret(SECCOMP_RET_ALLOW);
  // Another architecture.
  const size_t foreign = p.code().size();
  p.code()[native_check].jf = static_cast<uint8_t>(foreign - native_check - 1);
#if defined(__x86_64__)
  p.load_arch();
  const size_t i386_check = p.code().size();
  p.if_equal(AUDIT_ARCH_I386, 0);  // patched below: skip to the end
  constexpr uint32_t kI386Socket = 359, kI386Socketpair = 360, kI386Socketcall = 102,
                     kI386IoUringSetup = 425;
  refuse_vsock_family(p, kI386Socket);
  refuse_vsock_family(p, kI386Socketpair);
  p.load_nr();
  p.if_equal(kI386Socketcall, 1);
  p.ret(kErrno(EAFNOSUPPORT));
  p.load_nr();
  p.if_equal(kI386IoUringSetup, 1);
  p.ret(kErrno(ENOSYS));
  p.ret(SECCOMP_RET_ALLOW);
  p.code()[i386_check].jf = static_cast<uint8_t>(p.code().size() - i386_check - 1);
#endif
  // An architecture this filter cannot read: nothing of it runs.
  p.ret(SECCOMP_RET_KILL_PROCESS);

  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    *error = std::string("prctl(PR_SET_NO_NEW_PRIVS): ") + std::strerror(errno);
    return false;
  }
  sock_fprog program{static_cast<unsigned short>(p.code().size()), p.code().data()};
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) != 0) {
    *error = std::string("seccomp(SECCOMP_SET_MODE_FILTER): ") + std::strerror(errno);
    return false;
  }
  return true;
}

}  // namespace vmci::vsock_run
