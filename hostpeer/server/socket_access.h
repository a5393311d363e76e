// socket_access.h: which users the kernel lets open the control socket.
//
// Connecting to a Unix socket needs write permission on its file, and
// search permission on every directory above it; the kernel checks both
// before hostpeer sees the peer at all. hostpeer's socket is mode 0600, so
// only its own user (and root) get that far. The users of the allow-lists
// (--allow-guest-uid, --allow-host-uid) are given read and write on the
// file by a POSIX access ACL with one entry per user, and nobody else is:
// the group and other classes keep no permission. What role each admitted
// user may take is then decided by SO_PEERCRED (PeerPolicy).
//
//   std::string error;
//   if (!grant_socket_access(temp_path, {1001, 1002}, &error)) fail(error);
//   for (uid_t uid : {1001, 1002})
//     if (auto closed = directory_closed_to(path, uid)) warn(*closed);
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vmci::host {

// The ACL, encoded as Linux's "system.posix_acl_access" extended attribute:
// the owner rw-, each of `uids` rw- (sorted, each once), the owning group
// ---, the mask rw-, others ---. The owner's uid may be among `uids`: an
// entry for it is harmless (the owner entry is what applies to it).
std::vector<uint8_t> socket_access_acl(std::vector<uid_t> uids);

// Sets that ACL on the file at `path` (the socket, before anyone may know
// its name). With no `uids` it does nothing and succeeds. False, with
// *error naming the file system's refusal, if the ACL cannot be set (a
// file system without POSIX ACLs): the caller must not start then, since
// the users it was told to admit could not connect.
bool grant_socket_access(const std::string& path, const std::vector<uid_t>& uids,
                         std::string* error);

// Whether `uid` may search every directory from `socket_path`'s parent up
// to the root, judged from their modes and access ACLs with `uid`'s groups
// (from the password and group databases; a uid without an account has
// none). Nothing if it may; else a sentence naming the first directory that
// stops it and what to do about it. Root may always search. Capabilities
// and security modules are not considered.
std::optional<std::string> directory_closed_to(const std::string& socket_path, uid_t uid);

}  // namespace vmci::host
