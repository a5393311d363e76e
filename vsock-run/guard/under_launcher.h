/* under_launcher.h: the guard of the project's own test and benchmark
 * programs that open AF_VSOCK sockets. On these machines the kernel's vsock
 * leads outside the project, so such a program runs only under
 * vmci-vsock-run, whose seccomp filter keeps the kernel's AF_VSOCK out of
 * reach, or inside a guest whose vsock is this project's VMCI device.
 * Header-only C99.
 *
 *   if (!vmci_under_launcher()) { fprintf(stderr, "run me under vmci-vsock-run\n"); return 2; }
 *   if (!vmci_under_launcher() && !vmci_in_vmci_guest()) return 2;   // a guest-side tool
 */
#ifndef VMCI_VSOCK_RUN_UNDER_LAUNCHER_H
#define VMCI_VSOCK_RUN_UNDER_LAUNCHER_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when a seccomp filter is on this process (Seccomp: 2) and the
 * launcher, which sets VMCI_VSOCK_BROKER after putting its filter on,
 * started it. */
static inline int vmci_under_launcher(void) {
  FILE* status = fopen("/proc/self/status", "r");
  char line[256];
  int mode = 0;
  if (status == NULL) return 0;
  while (fgets(line, sizeof line, status) != NULL) {
    if (sscanf(line, "Seccomp: %d", &mode) == 1) break;
  }
  fclose(status);
  return mode == 2 && getenv("VMCI_VSOCK_BROKER") != NULL;
}

/* True when this machine has a VMCI PCI device (15ad:0740): a guest whose
 * kernel vsock goes through it. */
static inline int vmci_in_vmci_guest(void) {
  DIR* devices = opendir("/sys/bus/pci/devices");
  struct dirent* entry;
  int found = 0;
  if (devices == NULL) return 0;
  while (!found && (entry = readdir(devices)) != NULL) {
    char path[512], id[2][16] = {"", ""};
    const char* const names[2] = {"vendor", "device"};
    for (int i = 0; i < 2; ++i) {
      snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/%s", entry->d_name, names[i]);
      FILE* f = fopen(path, "r");
      if (f == NULL) break;
      if (fgets(id[i], sizeof id[i], f) == NULL) id[i][0] = '\0';
      fclose(f);
    }
    found = strncmp(id[0], "0x15ad", 6) == 0 && strncmp(id[1], "0x0740", 6) == 0;
  }
  closedir(devices);
  return found;
}

#endif
