// SPDX-License-Identifier: Apache-2.0
// CertificateWatch: tells the renewal daemon at once when its certificate file was replaced
// (rename, as `etcd-requester renew --force` and certmonger do), rewritten in place or removed
// (#28): a daemon that slept on the old certificate's schedule let a shorter-lived replacement
// expire. inotify on the certificate's directory costs nothing while idle; events for other names
// in that directory (the state file, a metrics file, temporary files) are ignored.
#pragma once

#include <string>

#include "base/fd.h"

namespace requester {

class CertificateWatch {
 public:
  // Watches the directory of `cert_path`. When inotify is unavailable (no instances or watches
  // left, a file system without it) the watch is inactive and the daemon falls back to waking
  // often; it never fails the daemon.
  explicit CertificateWatch(const std::string& cert_path);
  CertificateWatch(const CertificateWatch&) = delete;
  CertificateWatch& operator=(const CertificateWatch&) = delete;

  bool active() const { return watch_ >= 0; }
  const std::string& error() const { return error_; }
  // Readable when events are queued; -1 when inactive.
  int fd() const { return active() ? fd_.get() : -1; }
  // Reads every queued event without blocking; true when one named the certificate (or events
  // were lost, or the directory itself went away: then the watch is inactive afterwards).
  bool Drain();

 private:
  base::UniqueFd fd_;
  int watch_ = -1;
  std::string name_;
  std::string error_;
};

}  // namespace requester
