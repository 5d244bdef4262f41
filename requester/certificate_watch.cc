// SPDX-License-Identifier: Apache-2.0
#include "requester/certificate_watch.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace requester {

namespace {

// What replaces or removes a file: a rename onto it or away from it, a writer closing it, an
// unlink, a chmod/chown (a certificate made unreadable). Not IN_CREATE or IN_MODIFY: those come
// before the content is complete, and a half-written file must not look like a missing one.
constexpr std::uint32_t kFileEvents = IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE | IN_ATTRIB;
// The directory itself renamed or removed: the watch is gone (IN_IGNORED follows).
constexpr std::uint32_t kDirectoryGone = IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED | IN_UNMOUNT;

}  // namespace

CertificateWatch::CertificateWatch(const std::string& cert_path) {
  std::filesystem::path path(cert_path);
  name_ = path.filename().string();
  std::string directory = path.has_parent_path() ? path.parent_path().string() : ".";
  fd_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (fd_.get() < 0) {
    error_ = std::string("inotify_init1: ") + std::strerror(errno);
    return;
  }
  watch_ = ::inotify_add_watch(fd_.get(), directory.c_str(), kFileEvents | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR);
  if (watch_ < 0) error_ = "inotify_add_watch " + directory + ": " + std::strerror(errno);
}

bool CertificateWatch::Drain() {
  if (!active()) return false;
  bool changed = false;
  alignas(inotify_event) char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: nothing more queued
    for (ssize_t at = 0; at < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
      at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if ((event->mask & IN_Q_OVERFLOW) != 0) {
        changed = true;
      } else if ((event->mask & kDirectoryGone) != 0) {
        changed = true;
        watch_ = -1;
        error_ = "the certificate's directory was removed or renamed";
      } else if (event->len > 0 && name_ == event->name) {
        changed = true;
      }
    }
  }
  return changed;
}

}  // namespace requester
