// SPDX-License-Identifier: Apache-2.0
// The forwarder's listening socket (#18): a unix socket made with its final mode and handed to its
// group, or a loopback TCP port. It is the forwarder's boundary: whoever can connect to it acts as
// this master towards etcd.
#pragma once

#include <sys/types.h>

#include <string>

#include "base/fd.h"
#include "requester/forward.h"

namespace requester {

class Listener {
 public:
  // Binds and listens on `address` (`text` as the operator wrote it, for messages), non-blocking.
  // A stale unix socket (nobody answers on it) is replaced; any other file there, or a socket that
  // somebody still serves, is refused: Failure(kCantCreate, "listen-failed"). The socket file is
  // made with `mode` (never wider) and given `group` ("" = the account's own; no such group:
  // Failure(kConfig, "bad-config")).
  Listener(const ListenAddress& address, const std::string& text, mode_t mode, const std::string& group);
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_.get(); }

 private:
  // The socket file this listener made: removed when the listener goes (also when its
  // construction fails half-way), and only then.
  struct OwnedSocketFile {
    std::string path;
    ~OwnedSocketFile();
  };
  OwnedSocketFile socket_file_;
  base::UniqueFd fd_;
};

}  // namespace requester
