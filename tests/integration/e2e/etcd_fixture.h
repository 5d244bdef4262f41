// A real etcd on 127.0.0.1 with TLS and client-certificate authentication, plus etcdctl.
#pragma once

#include <memory>
#include <string>

#include "test_support.h"

namespace testing_support {

class EtcdServer {
 public:
  // Makes a throwaway server CA and server certificate for 127.0.0.1 under `dir`.
  explicit EtcdServer(const std::string& dir);
  ~EtcdServer();
  // Starts etcd trusting `client_ca_bundle` for client certificates (--client-cert-auth).
  void Start(const std::string& client_ca_bundle);
  void Stop();
  // etcdctl with a client certificate and key file; returns its result.
  RunResult Ctl(const std::string& cert, const std::string& key,
                const std::vector<std::string>& args) const;
  int port() const { return client_port_; }

 private:
  std::string dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::unique_ptr<Process> etcd_;
};

}  // namespace testing_support
