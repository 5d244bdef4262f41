// SPDX-License-Identifier: Apache-2.0
// A real etcd on 127.0.0.1 with TLS and client-certificate authentication, plus etcdctl.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "test_support.h"

namespace testing_support {

class EtcdServer {
 public:
  // Makes a throwaway server CA and server certificate for 127.0.0.1 under `dir`.
  explicit EtcdServer(const std::string& dir);
  ~EtcdServer();
  // Starts etcd trusting `client_ca_bundle` for client certificates (--client-cert-auth) and, when
  // `client_crl_file` is given, refusing the serials it lists (--client-crl-file).
  void Start(const std::string& client_ca_bundle, const std::string& client_crl_file = "");
  // The running etcd's pid (-1 when stopped): a test can show etcd was never restarted.
  int pid() const;
  // For the next Start(): etcd runs under a shell loop that starts it again whenever it exits, as
  // systemd's Restart=always would; restart_script() is a program that makes it restart (what an
  // operator's `systemctl restart etcd` does).
  void set_supervised(bool supervised) { supervised_ = supervised; }
  std::string restart_script() const { return dir_ + "/restart-etcd.sh"; }
  bool Running() { return etcd_ && etcd_->Running(); }
  // For the next Start(): "warn" by default; "info" also logs each rejected connection and why.
  void set_log_level(const std::string& level) { log_level_ = level; }
  // etcd's combined stdout/stderr so far.
  std::string Log() const { return ReadFile(dir_ + "/etcd.log"); }
  void Stop();
  // etcdctl with a client certificate and key file; returns its result.
  RunResult Ctl(const std::string& cert, const std::string& key,
                const std::vector<std::string>& args) const;
  int port() const { return client_port_; }

 private:
  std::string dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  std::string log_level_ = "warn";
  bool supervised_ = false;
  std::unique_ptr<Process> etcd_;
};

// etcd-hsm with `token`'s environment (its SoftHSM configuration), up to 120 s.
RunResult RunHsm(std::vector<std::string> args, const CaToken& token);

// The root ceremony for one signer host (#12): a CSR for `key_uri` in the host's token
// (`etcd-hsm ca csr`, subject CN=`name`), signed by the root token (`ca sign-intermediate`, 30
// days). Returns the intermediate certificate, d.dir/`name`.pem (replaced if it existed).
std::string MakeIntermediate(const SignerDeployment& d, const std::string& name, const std::string& key_uri,
                             const CaToken& root, const std::string& root_cert);

}  // namespace testing_support
