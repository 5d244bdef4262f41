// SPDX-License-Identifier: Apache-2.0
#include "etcd_fixture.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <stdexcept>
#include <thread>

namespace testing_support {

EtcdServer::EtcdServer(const std::string& dir) : dir_(dir) {
  auto check = [](const RunResult& r, const char* what) {
    if (r.exit_code != 0) throw std::runtime_error(std::string(what) + ": " + r.err);
  };
  check(OpenSsl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", dir_ + "/server-ca.key", "-out", dir_ + "/server-ca.pem", "-days", "2",
                 "-subj", "/CN=etcd server test CA"}),
        "server CA");
  check(OpenSsl({"req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", dir_ + "/server.key", "-out", dir_ + "/server.csr", "-subj", "/CN=etcd"}),
        "server CSR");
  WriteFile(dir_ + "/server.ext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  check(OpenSsl({"x509", "-req", "-in", dir_ + "/server.csr", "-CA", dir_ + "/server-ca.pem", "-CAkey",
                 dir_ + "/server-ca.key", "-CAcreateserial", "-days", "2", "-extfile",
                 dir_ + "/server.ext", "-out", dir_ + "/server.pem"}),
        "server certificate");
}

EtcdServer::~EtcdServer() { Stop(); }

void EtcdServer::Start(const std::string& client_ca_bundle, const std::string& client_crl_file) {
  Stop();
  client_port_ = FreePort();
  peer_port_ = FreePort();
  std::string client = "https://127.0.0.1:" + std::to_string(client_port_);
  std::string peer = "http://127.0.0.1:" + std::to_string(peer_port_);
  std::vector<std::string> args{
      "/usr/bin/etcd", "--name", "test", "--data-dir", dir_ + "/data", "--listen-client-urls",
      client, "--advertise-client-urls", client, "--listen-peer-urls", peer,
      "--initial-advertise-peer-urls", peer, "--initial-cluster", "test=" + peer,
      "--cert-file", dir_ + "/server.pem", "--key-file", dir_ + "/server.key",
      "--client-cert-auth", "--trusted-ca-file", client_ca_bundle, "--log-level", log_level_};
  if (!client_crl_file.empty()) args.insert(args.end(), {"--client-crl-file", client_crl_file});
  if (supervised_) {
    // The words are paths and flags without blanks or quotes.
    std::string command;
    for (const auto& a : args) command += (command.empty() ? "" : " ") + a;
    WriteFile(dir_ + "/run-etcd.sh",
              "trap 'kill -TERM $pid 2>/dev/null; wait $pid; exit 0' TERM INT\nwhile :; do\n  " + command +
                  " >> " + dir_ + "/etcd.log 2>&1 &\n  pid=$!\n  echo $pid > " + dir_ + "/etcd.pid\n  wait $pid\ndone\n");
    WriteFile(restart_script(), "kill -TERM $(cat " + dir_ + "/etcd.pid)\n", 0755);
    ::unlink((dir_ + "/etcd.pid").c_str());
    args = {"/bin/sh", dir_ + "/run-etcd.sh"};
  }
  etcd_ = std::make_unique<Process>(
      args, std::map<std::string, std::string>{}, dir_ + "/etcd.log");
  if (!WaitForPort(client_port_, std::chrono::seconds(20))) {
    throw std::runtime_error("etcd did not start: " + ReadFile(dir_ + "/etcd.log"));
  }
}

void EtcdServer::Stop() { etcd_.reset(); }

int EtcdServer::pid() const {
  if (!etcd_) return -1;
  if (!supervised_) return etcd_->pid();
  std::string text = ReadFile(dir_ + "/etcd.pid");
  return text.empty() ? -1 : std::stoi(text);
}

RunResult EtcdServer::Ctl(const std::string& cert, const std::string& key,
                          const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"/usr/bin/etcdctl", "--endpoints",
                                "https://127.0.0.1:" + std::to_string(client_port_), "--cacert",
                                dir_ + "/server-ca.pem", "--cert", cert, "--key", key,
                                "--dial-timeout", "3s", "--command-timeout", "5s"};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv, {.env = {{"ETCDCTL_API", "3"}}, .timeout = std::chrono::seconds(30)});
}

RunResult RunHsm(std::vector<std::string> args, const CaToken& token) {
  args.insert(args.begin(), Binary("etcd-hsm"));
  return Run(args, {.env = token.env(), .timeout = std::chrono::seconds(120)});
}

std::string MakeIntermediate(const SignerDeployment& d, const std::string& name, const std::string& key_uri,
                             const CaToken& root, const std::string& root_cert) {
  std::string csr = d.dir + "/" + name + ".csr", pem = d.dir + "/" + name + ".pem";
  ::unlink(csr.c_str());
  ::unlink(pem.c_str());
  RunResult made = RunHsm({"ca", "csr", "--module", kSoftHsmModule, "--key", key_uri, "--pin-file", d.ca.pin_file,
                           "--subject", "CN=" + name, "--out", csr},
                          d.ca);
  EXPECT_EQ(made.exit_code, 0) << made.err;
  RunResult signed_ = RunHsm({"ca", "sign-intermediate", "--module", kSoftHsmModule, "--key", root.key_uri,
                              "--pin-file", root.pin_file, "--ca-cert", root_cert, "--csr", csr, "--days", "30",
                              "--out", pem},
                             root);
  EXPECT_EQ(signed_.exit_code, 0) << signed_.err;
  return pem;
}

}  // namespace testing_support
