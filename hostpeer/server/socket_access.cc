#include "server/socket_access.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace vmci::host {

namespace {

// Linux's ACL extended attribute (uapi linux/posix_acl_xattr.h and
// linux/posix_acl.h): a little-endian u32 version, then entries of
// {u16 tag, u16 perm, u32 id}, ordered by tag, then id.
constexpr char kAccessAclName[] = "system.posix_acl_access";
constexpr uint32_t kAclVersion = 2;
constexpr uint16_t kUserObj = 0x01, kUser = 0x02, kGroupObj = 0x04, kGroup = 0x08, kMask = 0x10,
                   kOther = 0x20;
constexpr uint16_t kRead = 4, kWrite = 2, kExecute = 1;
constexpr uint32_t kNoId = 0xffffffff;
constexpr size_t kEntrySize = 8;

struct AclEntry {
  uint16_t tag;
  uint16_t perm;
  uint32_t id;
};

void put_le(std::vector<uint8_t>* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<uint8_t>(value >> (8 * i)));
}

uint64_t get_le(const uint8_t* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value |= uint64_t{p[i]} << (8 * i);
  return value;
}

// The access ACL of `path`'s file: empty if it has none, or one that
// cannot be read (its mode then decides).
std::vector<AclEntry> access_acl_of(const std::string& path) {
  std::vector<AclEntry> entries;
  const ssize_t wanted = ::getxattr(path.c_str(), kAccessAclName, nullptr, 0);
  if (wanted < 4) return entries;
  std::vector<uint8_t> bytes(static_cast<size_t>(wanted));
  const ssize_t size = ::getxattr(path.c_str(), kAccessAclName, bytes.data(), bytes.size());
  if (size < 4 || get_le(bytes.data(), 4) != kAclVersion) return entries;
  for (size_t at = 4; at + kEntrySize <= static_cast<size_t>(size); at += kEntrySize) {
    entries.push_back({static_cast<uint16_t>(get_le(&bytes[at], 2)),
                       static_cast<uint16_t>(get_le(&bytes[at + 2], 2)),
                       static_cast<uint32_t>(get_le(&bytes[at + 4], 4))});
  }
  return entries;
}

// `uid`'s primary and supplementary groups; none without an account.
std::vector<gid_t> groups_of(uid_t uid) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> text(16384);
  if (::getpwuid_r(uid, &entry, text.data(), text.size(), &found) != 0 || found == nullptr) {
    return {};
  }
  int count = 64;
  std::vector<gid_t> groups(static_cast<size_t>(count));
  if (::getgrouplist(entry.pw_name, entry.pw_gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<size_t>(count));
    if (::getgrouplist(entry.pw_name, entry.pw_gid, groups.data(), &count) < 0) {
      return {entry.pw_gid};
    }
  }
  groups.resize(static_cast<size_t>(count));
  return groups;
}

// The kernel's permission check (fs/namei.c acl_permission_check and
// fs/posix_acl.c posix_acl_permission) for search, for a user that is
// not root.
bool may_search(const struct stat& st, const std::vector<AclEntry>& acl, uid_t uid,
                const std::vector<gid_t>& groups) {
  const auto in_groups = [&](gid_t gid) {
    return std::find(groups.begin(), groups.end(), gid) != groups.end();
  };
  if (uid == st.st_uid) return (st.st_mode & S_IXUSR) != 0;
  if (acl.empty()) {
    if (in_groups(st.st_gid)) return (st.st_mode & S_IXGRP) != 0;
    return (st.st_mode & S_IXOTH) != 0;
  }
  uint16_t mask = kRead | kWrite | kExecute;
  for (const AclEntry& e : acl) {
    if (e.tag == kMask) mask = e.perm;
  }
  for (const AclEntry& e : acl) {
    if (e.tag == kUser && e.id == uid) return (e.perm & mask & kExecute) != 0;
  }
  bool in_a_group = false;
  for (const AclEntry& e : acl) {
    const bool matches = (e.tag == kGroupObj && in_groups(st.st_gid)) ||
                         (e.tag == kGroup && in_groups(static_cast<gid_t>(e.id)));
    if (!matches) continue;
    if ((e.perm & mask & kExecute) != 0) return true;
    in_a_group = true;
  }
  if (in_a_group) return false;
  for (const AclEntry& e : acl) {
    if (e.tag == kOther) return (e.perm & kExecute) != 0;
  }
  return (st.st_mode & S_IXOTH) != 0;
}

}  // namespace

std::vector<uint8_t> socket_access_acl(std::vector<uid_t> uids) {
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  std::vector<AclEntry> entries;
  entries.push_back({kUserObj, kRead | kWrite, kNoId});
  for (uid_t uid : uids) entries.push_back({kUser, kRead | kWrite, static_cast<uint32_t>(uid)});
  entries.push_back({kGroupObj, 0, kNoId});
  entries.push_back({kMask, kRead | kWrite, kNoId});
  entries.push_back({kOther, 0, kNoId});
  std::vector<uint8_t> out;
  put_le(&out, kAclVersion, 4);
  for (const AclEntry& e : entries) {
    put_le(&out, e.tag, 2);
    put_le(&out, e.perm, 2);
    put_le(&out, e.id, 4);
  }
  return out;
}

bool grant_socket_access(const std::string& path, const std::vector<uid_t>& uids,
                         std::string* error) {
  if (uids.empty()) return true;
  const std::vector<uint8_t> acl = socket_access_acl(uids);
  if (::setxattr(path.c_str(), kAccessAclName, acl.data(), acl.size(), 0) == 0) return true;
  const int saved = errno;
  *error = "cannot let the allowed users (--allow-guest-uid, --allow-host-uid) open " + path +
           ": setting its POSIX ACL failed: " + std::strerror(saved);
  if (saved == EOPNOTSUPP) {
    *error +=
        " (the file system has no POSIX ACLs: put the socket on one that has, such as "
        "tmpfs or ext4, with --socket)";
  }
  return false;
}

std::optional<std::string> directory_closed_to(const std::string& socket_path, uid_t uid) {
  if (uid == 0) return std::nullopt;
  std::error_code ec;
  std::filesystem::path dir = std::filesystem::absolute(socket_path, ec).parent_path();
  if (ec) return std::nullopt;
  const std::vector<gid_t> groups = groups_of(uid);
  for (;;) {
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0 && !may_search(st, access_acl_of(dir), uid, groups)) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      const std::string who = std::to_string(uid);
      return "user " + who + " cannot reach " + socket_path + ": directory " + dir.string() +
             " (owner " + std::to_string(st.st_uid) + ", mode " + mode +
             ") does not let it search; give it search permission (setfacl -m u:" + who + ":x " +
             dir.string() +
             ", or chmod o+x) or put the socket in a directory it can reach "
             "(--socket)";
    }
    if (dir == dir.root_path() || dir.empty()) return std::nullopt;
    dir = dir.parent_path();
  }
}

}  // namespace vmci::host
