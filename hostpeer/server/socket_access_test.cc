// The socket file's ACL for the allow-lists, and the check that the
// directories above it let an allowed user through, on real files in a
// temporary directory.
#include "server/socket_access.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace vmci::host {
namespace {

constexpr uid_t kNobody = 65534;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vmci-socket-access-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One entry of the encoded ACL: tag, permissions, id (little-endian).
std::vector<uint8_t> entry(uint16_t tag, uint16_t perm, uint32_t id) {
  return {static_cast<uint8_t>(tag),      static_cast<uint8_t>(tag >> 8),
          static_cast<uint8_t>(perm),     static_cast<uint8_t>(perm >> 8),
          static_cast<uint8_t>(id),       static_cast<uint8_t>(id >> 8),
          static_cast<uint8_t>(id >> 16), static_cast<uint8_t>(id >> 24)};
}

TEST(SocketAccess, TheAclGivesTheOwnerAndEachUserReadAndWriteAndNobodyElseAnything) {
  std::vector<uint8_t> expected = {2, 0, 0, 0};
  for (const auto& e :
       {entry(0x01, 6, 0xffffffff), entry(0x02, 6, 1001), entry(0x02, 6, 1002),
        entry(0x04, 0, 0xffffffff), entry(0x10, 6, 0xffffffff), entry(0x20, 0, 0xffffffff)}) {
    expected.insert(expected.end(), e.begin(), e.end());
  }
  // Users are sorted and each appears once, as the kernel requires.
  EXPECT_EQ(socket_access_acl({1002, 1001, 1002}), expected);
}

TEST(SocketAccess, GrantingSetsTheAclOnTheFileAndItsModeShowsTheMask) {
  TempDir dir;
  const std::string file = dir.path() + "/socket";
  std::ofstream(file).put('x');
  ASSERT_EQ(::chmod(file.c_str(), 0600), 0);
  std::string error;
  if (!grant_socket_access(file, {kNobody}, &error)) {
    if (error.find("no POSIX ACLs") != std::string::npos) GTEST_SKIP() << error;
    FAIL() << error;
  }
  std::vector<uint8_t> stored(256);
  const ssize_t size =
      ::getxattr(file.c_str(), "system.posix_acl_access", stored.data(), stored.size());
  ASSERT_GT(size, 0) << std::strerror(errno);
  stored.resize(static_cast<size_t>(size));
  EXPECT_EQ(stored, socket_access_acl({kNobody}));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);  // the group bits are the mask; the group entry is ---
}

TEST(SocketAccess, NoUsersLeaveTheFileAlone) {
  TempDir dir;
  const std::string file = dir.path() + "/socket";
  std::ofstream(file).put('x');
  ASSERT_EQ(::chmod(file.c_str(), 0600), 0);
  std::string error;
  EXPECT_TRUE(grant_socket_access(file, {}, &error)) << error;
  EXPECT_LT(::getxattr(file.c_str(), "system.posix_acl_access", nullptr, 0), 0);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SocketAccess, AClosedDirectoryIsNamedWithWhatToDo) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  const auto closed = directory_closed_to(dir.path() + "/hostpeer.sock", kNobody);
  ASSERT_TRUE(closed);
  EXPECT_NE(closed->find("directory " + dir.path() + " "), std::string::npos) << *closed;
  EXPECT_NE(closed->find("mode 0700"), std::string::npos) << *closed;
  EXPECT_NE(closed->find("setfacl -m u:65534:x " + dir.path()), std::string::npos) << *closed;
  EXPECT_NE(closed->find("--socket"), std::string::npos) << *closed;
}

TEST(SocketAccess, ASearchableDirectoryLetsTheUserThrough) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0711), 0);
  EXPECT_FALSE(directory_closed_to(dir.path() + "/hostpeer.sock", kNobody));
}

TEST(SocketAccess, ADirectoryAclThatGrantsSearchLetsTheUserThrough) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  // A named-user entry with search (--x), the mask allowing it.
  std::vector<uint8_t> acl = {2, 0, 0, 0};
  for (const auto& e :
       {entry(0x01, 7, 0xffffffff), entry(0x02, 1, kNobody), entry(0x04, 0, 0xffffffff),
        entry(0x10, 1, 0xffffffff), entry(0x20, 0, 0xffffffff)}) {
    acl.insert(acl.end(), e.begin(), e.end());
  }
  if (::setxattr(dir.path().c_str(), "system.posix_acl_access", acl.data(), acl.size(), 0) != 0) {
    GTEST_SKIP() << "no POSIX ACLs here: " << std::strerror(errno);
  }
  EXPECT_FALSE(directory_closed_to(dir.path() + "/hostpeer.sock", kNobody));
  EXPECT_TRUE(directory_closed_to(dir.path() + "/hostpeer.sock", kNobody - 1));
}

TEST(SocketAccess, RootAndTheDirectorysOwnerAreNeverKeptOut) {
  TempDir dir;
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  EXPECT_FALSE(directory_closed_to(dir.path() + "/hostpeer.sock", 0));
  EXPECT_FALSE(directory_closed_to(dir.path() + "/hostpeer.sock", ::getuid()));
}

}  // namespace
}  // namespace vmci::host
