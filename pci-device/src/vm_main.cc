// vm_main.cc: vmci-vm, a real Linux guest under QEMU with the VMCI device.
//
//   vmci-vm [--socket PATH] [--kernel VMLINUX] [--initrd FILE] [--kvm]
//           [--cid N] [--file HOST=GUEST]... [--host-program NAME]...
//           [--interrupts ivshmem|poll] [--timeout SECONDS] [-- COMMAND...]
//
// Boots Debian's kernel (the guest image of scripts/lib/guest-image-build,
// cached outside the clone) under QEMU with vmci-qemu-device behind
// x-pci-proxy-dev: the guest loads vmw_vmci and vSockets and is one guest
// context of hostpeer. COMMAND (a shell command line, run by the guest's
// /bin/sh), the files given with --file and the programs given with
// --host-program (with the libraries they load; socat by itself when COMMAND
// starts with it) go into an overlay initramfs;
// without COMMAND the guest's shell is on the console. The console goes to
// stdout; the exit status is COMMAND's in the guest. Launcher failures:
// 124 the timeout passed, 125 the launcher or the guest failed before
// COMMAND finished (the reason on stderr), 2 a bad command line.
//
// Interrupts: QEMU 7.2's proxy device cannot raise one under TCG
// (pci-device/README.md). `--interrupts ivshmem` (the default): the device
// is the server of an `ivshmem-doorbell` QEMU gets beside it, offers MSI-X,
// and the guest runs /bin/vmci-irq-bridge (copied into the overlay) before
// COMMAND, so each VMCI vector arrives as ivshmem's MSI-X message; a failed
// bridge fails the run (status 125, its reason on the console) before
// COMMAND runs. Without COMMAND the bridge runs before the shell. With
// --initrd nothing is added to the initramfs: its /init must run the bridge.
// `--interrupts poll`: the guest is booted with `irqpoll nolapic_timer` and
// its timer tick calls the VMCI handlers (about 4 ms); the device offers
// MSI alone.
#include <CLI/CLI.hpp>
#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

constexpr int kTimedOut = 124;
constexpr int kFailed = 125;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "vmci-vm: %s\n", why.c_str());
  std::exit(kFailed);
}

fs::path self_dir() { return fs::read_symlink("/proc/self/exe").parent_path(); }

// A script that is installed in libexec/vmci-hostpeer beside the programs,
// else the source tree's (source_dir relative to the source root).
fs::path script(const std::string& name, const std::string& source_dir = "scripts/lib") {
  const fs::path installed = self_dir() / ".." / "libexec" / "vmci-hostpeer" / name;
  if (fs::exists(installed)) return installed;
  return fs::path(VMCI_SOURCE_DIR) / source_dir / name;
}

// What the guest's /init sources as /vmci-vm/command when the bridge runs
// first; the exit marker's status then is 125 (kFailed) if the bridge fails.
constexpr const char* kBridgeFirst =
    "sh /bin/vmci-irq-bridge || { echo 'vmci-vm: vmci-irq-bridge failed: no interrupts'; "
    "exit 125; }\n";

// Runs `argv` and returns what it printed on stdout (stderr passes through).
std::string output_of(const std::vector<std::string>& argv) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) fail(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(pipe_fds[1], STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "vmci-vm: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
    if (n > 0) out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail(argv[0] + " failed");
  return out;
}

std::string shell_quote(const std::string& word) {
  std::string q = "'";
  for (char c : word) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// A private temp directory, removed with its contents.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "vmci-vm.XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) fail(std::string("mkdtemp: ") + std::strerror(errno));
    path = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// The initramfs: the image's base followed by an overlay with COMMAND and
// the files. With bridge, the overlay has /bin/vmci-irq-bridge and
// /vmci-vm/command runs it first (then COMMAND, or the console's shell).
// Whether PROGRAM is a 64-bit ELF executable that names a program
// interpreter (the dynamic loader); nullopt if it is no 64-bit ELF at all.
std::optional<bool> elf_is_dynamic(const fs::path& program) {
  std::ifstream in(program, std::ios::binary);
  Elf64_Ehdr header{};
  if (!in.read(reinterpret_cast<char*>(&header), sizeof header) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64) {
    return std::nullopt;
  }
  for (unsigned i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr segment{};
    in.seekg(static_cast<std::streamoff>(header.e_phoff + uint64_t{i} * header.e_phentsize));
    if (!in.read(reinterpret_cast<char*>(&segment), sizeof segment)) return std::nullopt;
    if (segment.p_type == PT_INTERP) return true;
  }
  return false;
}

// --file entries for a host program and the libraries it loads (ldd's
// paths), so that a dynamically linked program runs in the guest as it does
// here: the program at /bin/NAME, each library at its own path. A static
// program comes alone.
std::vector<std::string> host_program_files(const std::string& name) {
  fs::path program = name;
  if (name.find('/') == std::string::npos) {
    for (const char* dir : {"/usr/bin", "/bin", "/usr/sbin", "/sbin"}) {
      if (fs::is_regular_file(fs::path(dir) / name)) {
        program = fs::path(dir) / name;
        break;
      }
    }
  }
  if (!fs::is_regular_file(program)) fail("--host-program " + name + ": not found on this machine");
  const auto dynamic = elf_is_dynamic(program);
  if (!dynamic) {
    fail("--host-program " + program.string() +
         ": not a 64-bit ELF program (copy scripts and other files with --file HOST=GUEST)");
  }
  std::vector<std::string> files = {program.string() + "=/bin/" + program.filename().string()};
  if (!*dynamic) return files;
  std::istringstream ldd(output_of({"/usr/bin/ldd", program.string()}));
  std::string word;
  while (ldd >> word) {
    if (word.starts_with('/') && fs::is_regular_file(word)) files.push_back(word + "=" + word);
  }
  return files;
}

fs::path make_initrd(const fs::path& image, const TempDir& dir,
                     const std::vector<std::string>& command,
                     const std::vector<std::string>& files, bool bridge) {
  const fs::path overlay = dir.path / "overlay";
  fs::create_directories(overlay / "vmci-vm");
  if (bridge) {
    const fs::path source = script("vmci-irq-bridge", "pci-device/guest");
    if (!fs::is_regular_file(source)) fail(source.string() + ": no such file");
    fs::create_directories(overlay / "bin");
    fs::copy_file(source, overlay / "bin" / "vmci-irq-bridge",
                  fs::copy_options::overwrite_existing);
    fs::permissions(overlay / "bin" / "vmci-irq-bridge", fs::perms::owner_all |
                    fs::perms::group_read | fs::perms::group_exec | fs::perms::others_read |
                    fs::perms::others_exec);
  }
  if (!command.empty() || bridge) {
    std::ofstream out(overlay / "vmci-vm" / "command");
    if (bridge) out << kBridgeFirst;
    for (size_t i = 0; i < command.size(); ++i) out << (i ? " " : "") << shell_quote(command[i]);
    if (command.empty()) out << "setsid cttyhack sh";
    out << "\n";
  }
  for (const std::string& file : files) {
    const auto eq = file.find('=');
    const fs::path host = file.substr(0, eq);
    fs::path guest = eq == std::string::npos ? fs::path("/bin") / host.filename()
                                             : fs::path(file.substr(eq + 1));
    if (!fs::is_regular_file(host)) fail("--file " + host.string() + ": no such file");
    const fs::path target = overlay / guest.relative_path();
    fs::create_directories(target.parent_path());
    fs::copy_file(host, target, fs::copy_options::overwrite_existing);
  }
  const fs::path overlay_cpio = dir.path / "overlay.cpio";
  output_of({script("guest-image-overlay").string(), overlay.string(), overlay_cpio.string()});
  const fs::path initrd = dir.path / "initrd";
  std::ofstream out(initrd, std::ios::binary);
  for (const fs::path& part : {image / "base.cpio", overlay_cpio}) {
    std::ifstream in(part, std::ios::binary);
    out << in.rdbuf();
  }
  return initrd;
}

pid_t spawn(const std::vector<std::string>& argv, int keep_fd, int stdout_fd) {
  const pid_t pid = ::fork();
  if (pid < 0) fail(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (keep_fd >= 0) ::fcntl(keep_fd, F_SETFD, 0);
    if (stdout_fd >= 0) ::dup2(stdout_fd, STDOUT_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "vmci-vm: cannot run %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vmci-vm: a real Linux guest (Debian's kernel) under QEMU with the VMCI device, "
               "one guest context of hostpeer"};
  std::string socket_path, kernel, initrd_given;
  bool kvm = false;
  std::optional<uint32_t> cid;
  std::vector<std::string> files, command;
  double timeout_s = 0;
  app.set_version_flag("--version", "vmci-vm " VMCI_VERSION);
  app.add_option("--socket", socket_path,
                 "hostpeer's socket (default: $VMCI_HOSTPEER_SOCKET, else the default path)");
  app.add_option("--kernel", kernel, "the kernel to boot (default: the guest image's vmlinux)");
  app.add_option("--initrd", initrd_given,
                 "the whole initramfs to boot (default: the guest image's, with COMMAND)");
  app.add_flag("--kvm", kvm, "use KVM (TCG by default: nested KVM is not reliable here)");
  app.add_option("--cid", cid, "the guest's context id, if free (else one is assigned)");
  std::vector<std::string> host_programs;
  app.add_option("--host-program", host_programs,
                 "NAME or PATH: copy a program of this machine into the guest's /bin with the "
                 "libraries it loads (a COMMAND that starts with socat gets socat so)")
      ->allow_extra_args(false);
  // One value per --file, so that "--file A -- COMMAND" ends at A.
  app.add_option("--file", files, "HOST[=GUEST]: copy a file into the guest (default /bin/NAME)")
      ->allow_extra_args(false);
  app.add_option("--timeout", timeout_s, "kill the guest after this many seconds (exit 124)");
  std::string interrupts = "ivshmem";
  app.add_option("--interrupts", interrupts,
                 "ivshmem: the device's MSI-X through an ivshmem-doorbell and the guest's "
                 "vmci-irq-bridge (default); poll: the guest polls (irqpoll, about 4 ms)")
      ->check(CLI::IsMember({"ivshmem", "poll"}));
  app.add_option("command", command, "COMMAND [ARGS...] (after --), run by the guest's shell");
  app.footer("Exit status: COMMAND's in the guest; 124 the timeout passed; 125 the launcher or "
             "the guest failed first; 2 a bad command line.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (!initrd_given.empty() && (!command.empty() || !files.empty() || !host_programs.empty())) {
    std::fprintf(stderr, "vmci-vm: --initrd replaces the image's initramfs: COMMAND, --file and "
                         "--host-program cannot go with it\n");
    return 2;
  }
  // The newcomer's first command, `vmci-vm -- socat - VSOCK-CONNECT:2:PORT`,
  // brings socat along (the image has busybox only).
  if (!command.empty() && command[0] == "socat" &&
      std::find(host_programs.begin(), host_programs.end(), "socat") == host_programs.end()) {
    host_programs.push_back("socat");
  }
  for (const std::string& program : host_programs) {
    for (std::string& file : host_program_files(program)) files.push_back(std::move(file));
  }
  // What can be refused without booting is refused before the image is built.
  for (const std::string& file : files) {
    const fs::path host = file.substr(0, file.find('='));
    if (!fs::is_regular_file(host)) fail("--file " + host.string() + ": no such file");
  }
  if (kvm && ::access("/dev/kvm", R_OK | W_OK) != 0) {
    fail(std::string("--kvm: /dev/kvm cannot be opened (") + std::strerror(errno) +
         "); leave --kvm out to run the guest under TCG");
  }

  TempDir dir;
  fs::path image;
  if (kernel.empty() || initrd_given.empty()) {
    std::string out = output_of({script("guest-image-build").string()});
    while (!out.empty() && out.back() == '\n') out.pop_back();
    image = out.substr(out.find_last_of('\n') + 1);
  }
  const fs::path kernel_path = kernel.empty() ? image / "vmlinux" : fs::path(kernel);
  const bool ivshmem = interrupts == "ivshmem";
  const fs::path initrd = initrd_given.empty() ? make_initrd(image, dir, command, files, ivshmem)
                                               : fs::path(initrd_given);
  const fs::path ivshmem_socket = dir.path / "ivshmem.sock";

  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    fail(std::string("socketpair: ") + std::strerror(errno));
  }
  std::vector<std::string> device_argv = {(self_dir() / "vmci-qemu-device").string(), "--fd",
                                          std::to_string(pair[1])};
  if (!socket_path.empty()) device_argv.insert(device_argv.end(), {"--socket", socket_path});
  if (cid) device_argv.insert(device_argv.end(), {"--cid", std::to_string(*cid)});
  if (ivshmem) device_argv.insert(device_argv.end(), {"--ivshmem", ivshmem_socket.string()});
  device_argv.insert(device_argv.end(), {"--log-level", "warn"});
  const pid_t device = spawn(device_argv, pair[1], -1);
  ::close(pair[1]);
  // QEMU connects to the ivshmem socket while it builds the machine: wait
  // until the device listens there (after it reached hostpeer).
  for (int waited_ms = 0; ivshmem && !fs::exists(ivshmem_socket); waited_ms += 20) {
    int device_status;
    if (::waitpid(device, &device_status, WNOHANG) == device) {
      fail("vmci-qemu-device ended before serving ivshmem (status " +
           std::to_string(WIFEXITED(device_status) ? WEXITSTATUS(device_status) : -1) + ")");
    }
    if (waited_ms > 30000) fail("vmci-qemu-device did not serve " + ivshmem_socket.string());
    ::usleep(20000);
  }

  int console[2];
  if (::pipe2(console, O_CLOEXEC) != 0) fail(std::string("pipe: ") + std::strerror(errno));
  std::vector<std::string> qemu_argv = {
      "qemu-system-x86_64", "-M", "pc,memory-backend=mem", "-object",
      "memory-backend-memfd,id=mem,size=512M,share=on", "-m", "512M", "-smp", "1",
      "-nographic", "-nic", "none", "-no-reboot", "-kernel", kernel_path.string(), "-initrd",
      initrd.string(), "-append",
      ivshmem ? "console=ttyS0 panic=-1" : "console=ttyS0 panic=-1 irqpoll nolapic_timer",
      "-device", "x-pci-proxy-dev,id=vmci,fd=" + std::to_string(pair[0])};
  if (ivshmem) {
    qemu_argv.insert(qemu_argv.end(),
                     {"-chardev", "socket,id=ivs,path=" + ivshmem_socket.string(), "-device",
                      "ivshmem-doorbell,chardev=ivs,vectors=3"});
  }
  qemu_argv.insert(qemu_argv.end(), {"-accel", kvm ? "kvm" : "tcg"});
  const pid_t qemu = spawn(qemu_argv, pair[0], console[1]);
  ::close(pair[0]);
  ::close(console[1]);

  // The console, to stdout, line by line, watching for the exit marker.
  const std::regex marker("vmci-vm: exit status ([0-9]+)\r?");
  std::optional<int> status;
  bool bridge_failed = false;
  std::string line;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  bool timed_out = false;
  for (;;) {
    pollfd p{console[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, 100);
    if (ready > 0) {
      char buf[4096];
      const ssize_t n = ::read(console[0], buf, sizeof buf);
      if (n <= 0) break;  // QEMU ended
      std::fwrite(buf, 1, static_cast<size_t>(n), stdout);
      std::fflush(stdout);
      for (ssize_t i = 0; i < n; ++i) {
        if (buf[i] != '\n') {
          line += buf[i];
          continue;
        }
        std::smatch m;
        if (std::regex_match(line, m, marker)) status = std::stoi(m[1]);
        if (line.starts_with("vmci-vm: vmci-irq-bridge failed")) bridge_failed = true;
        line.clear();
      }
    }
    if (timeout_s > 0 && std::chrono::steady_clock::now() > deadline) {
      timed_out = true;
      ::kill(qemu, SIGKILL);
      break;
    }
    int device_status;
    if (::waitpid(device, &device_status, WNOHANG) == device) {
      ::kill(qemu, SIGKILL);
      ::waitpid(qemu, nullptr, 0);
      fail("vmci-qemu-device ended first (status " +
           std::to_string(WIFEXITED(device_status) ? WEXITSTATUS(device_status) : -1) + ")");
    }
  }
  int qemu_status = 0;
  ::waitpid(qemu, &qemu_status, 0);
  int device_status = 0;
  for (int i = 0; i < 50 && ::waitpid(device, &device_status, WNOHANG) == 0; ++i) {
    ::usleep(100000);  // it ends with QEMU's socket
  }
  ::kill(device, SIGKILL);
  ::waitpid(device, nullptr, 0);
  if (timed_out) {
    std::fprintf(stderr, "vmci-vm: the guest ran past --timeout %g s; killed\n", timeout_s);
    return kTimedOut;
  }
  if (bridge_failed) fail("the guest's vmci-irq-bridge failed (its reason is on the console)");
  if (!status) {
    fail("QEMU ended before the guest's command finished (QEMU's status " +
         std::to_string(WIFEXITED(qemu_status) ? WEXITSTATUS(qemu_status) : -1) + ")");
  }
  return *status;
}
