// SPDX-License-Identifier: Apache-2.0
#include "requester/forward_listener.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "base/failure.h"
#include "base/text.h"
#include "requester/forward_io.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;
using base::UniqueFd;

sockaddr_un UnixAddress(const std::string& path) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size());  // ParseListen checked the length
  return sa;
}

// Clears the way for our socket: a socket left by a forwarder that died is removed; anything else
// there (a file, a socket that somebody still serves) is refused. Only "nobody listens"
// (ECONNREFUSED) makes a socket stale: a probe refused for any other reason (EACCES: someone
// listens on a socket we may not use) leaves it alone.
void RemoveStaleSocket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) {
    throw Failure(ExitCode::kCantCreate, "listen-failed", path + " exists and is not a socket; not replacing it");
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un sa = UnixAddress(path);
  if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0) {
    throw Failure(ExitCode::kCantCreate, "listen-failed", "another process is listening on " + path);
  }
  int err = errno;
  if (err != ECONNREFUSED) {
    throw Failure(ExitCode::kCantCreate, "listen-failed",
                  path + " exists and cannot be probed (" + std::strerror(err) +
                      "): it may still be served; not replacing it");
  }
  ::unlink(path.c_str());
}

// The socket's directory: whoever else can write it can put their own socket at our path between
// two runs (kube-apiserver would then talk to them as this master) or remove ours. So it must be
// ours or root's and writable by nobody else; a sticky directory shared with others (/tmp) is
// refused too, since anyone may create the name first.
void CheckSocketDirectory(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) base::ThrowErrno("listen-failed", "cannot inspect the directory of", path, errno);
  uid_t me = ::geteuid();
  if (st.st_uid != me && st.st_uid != 0) {
    throw Failure(ExitCode::kConfig, "listen-unsafe",
                  "the socket's directory " + dir + " is owned by uid " + std::to_string(st.st_uid) +
                      ", who could replace the socket: use this service's runtime directory (/run/etcd-requester-forward)");
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw Failure(ExitCode::kConfig, "listen-unsafe",
                  "the socket's directory " + dir + " is writable by group or others (mode " + mode +
                      "): another account could put its own socket there; use this service's runtime directory");
  }
}

// The socket file is created with its final mode (never wider), not chmod'ed after.
int BindUnixSocket(const std::string& path, mode_t mode) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) base::ThrowErrno("listen-failed", "cannot create a socket for", path, errno);
  sockaddr_un sa = UnixAddress(path);
  mode_t old = ::umask(static_cast<mode_t>(~mode & 0777));
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  int err = errno;
  ::umask(old);
  if (rc != 0) base::ThrowErrno("listen-failed", "cannot bind", path, err);
  return fd.release();
}

// lchown never follows a link someone may have swapped in.
void GiveToGroup(const std::string& path, const std::string& group_name) {
  std::vector<char> buf(16384);
  group g{};
  group* found = nullptr;
  if (::getgrnam_r(group_name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    throw Failure(ExitCode::kConfig, "bad-config", "no group '" + base::Printable(group_name, 64) + "' (--listen-group)");
  }
  if (::lchown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
    // Not a member of the group (EPERM): the account must be in it to hand the socket over.
    base::ThrowErrno("listen-failed", "cannot give the group " + group_name + " (is this account a member?) to", path,
                     errno);
  }
}

int BindLoopback(const ListenAddress& address, const std::string& text) {
  bool v6 = address.ip.find(':') != std::string::npos;
  UniqueFd fd(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) base::ThrowErrno("listen-failed", "cannot create a socket for", text, errno);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(static_cast<uint16_t>(address.port));
    inet_pton(AF_INET6, address.ip.c_str(), &s6->sin6_addr);
    len = sizeof *s6;
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(static_cast<uint16_t>(address.port));
    inet_pton(AF_INET, address.ip.c_str(), &s4->sin_addr);
    len = sizeof *s4;
  }
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    base::ThrowErrno("listen-failed", "cannot bind", text, errno);
  }
  return fd.release();
}

}  // namespace

Listener::OwnedSocketFile::~OwnedSocketFile() {
  if (!path.empty()) ::unlink(path.c_str());
}

Listener::Listener(const ListenAddress& address, const std::string& text, mode_t mode, const std::string& group) {
  if (address.unix_socket) {
    CheckSocketDirectory(address.path);
    RemoveStaleSocket(address.path);
    fd_.reset(BindUnixSocket(address.path, mode));
    socket_file_.path = address.path;
    if (!group.empty()) GiveToGroup(address.path, group);
  } else {
    fd_.reset(BindLoopback(address, text));
  }
  if (::listen(fd_.get(), 128) != 0) base::ThrowErrno("listen-failed", "cannot listen on", text, errno);
  SetNonBlocking(fd_.get());
}

}  // namespace requester
