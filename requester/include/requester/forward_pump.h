// SPDX-License-Identifier: Apache-2.0
// The forwarder's byte pump (#18): one client's plaintext to etcd's TLS connection and back.
#pragma once

#include <openssl/ssl.h>

#include "requester/forward_io.h"

namespace requester {

// Copies bytes both ways between `client` (a non-blocking socket) and `ssl` over `upstream` (its
// non-blocking socket) until either side closes or fails, or `stop` is raised. The client's EOF ends
// the connection once its bytes are sent (close_notify to etcd): gRPC clients never half-close, and
// a closed client cannot be told from a half-closed one without writing to it.
void PumpBytes(int client, SSL* ssl, int upstream, const StopSignal& stop);

}  // namespace requester
