// SPDX-License-Identifier: Apache-2.0
// `etcd-requester certmonger` without a signer: the operations answered locally and the
// configuration and CSR checks that come before any connection (the exchange itself is tested
// with the real certmonger in tests/integration/requester/certmonger_test.cc).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>

#include "requester/certmonger.h"
#include "test_support.h"

namespace {

using testing_support::TempDir;
using testing_support::WriteFile;

struct Answer {
  int status;
  std::string out;
};

Answer Helper(const std::map<std::string, std::string>& vars, const std::string& config) {
  std::FILE* out = std::tmpfile();
  requester::CertmongerHelperIo io;
  io.getenv = [&vars](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  io.out = out;
  int status = requester::RunCertmongerHelper(config, io, requester::RequesterEnv{});
  std::rewind(out);
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, out)) > 0) text.append(buf, n);
  std::fclose(out);
  return {status, text};
}

TEST(CertmongerHelper, AnswersWhatNeedsNoSigner) {
  Answer id = Helper({{"CERTMONGER_OPERATION", "IDENTIFY"}}, "");
  EXPECT_EQ(id.status, 0);
  EXPECT_EQ(id.out, std::string("etcd-requester ") + ETCD_SIGNER_VERSION + "\n");
  for (const char* op : {"GET-NEW-REQUEST-REQUIREMENTS", "GET-RENEW-REQUEST-REQUIREMENTS"}) {
    Answer a = Helper({{"CERTMONGER_OPERATION", op}}, "");
    EXPECT_EQ(a.status, 0) << op;
    EXPECT_EQ(a.out, "") << op;
  }
  for (const char* op : {"GET-SUPPORTED-TEMPLATES", "GET-DEFAULT-TEMPLATE", "FETCH-SCEP-CA-CAPS",
                         "FETCH-SCEP-CA-CERTS", "submit", ""}) {
    EXPECT_EQ(Helper({{"CERTMONGER_OPERATION", op}}, "").status, 6) << op;
  }
  EXPECT_EQ(Helper({}, "").status, 6);
}

TEST(CertmongerHelper, ConfigurationProblemsAreUnderconfigured) {
  TempDir dir;
  const std::string base =
      "server = \"signer@127.0.0.1:1\"\nknown_hosts = \"" + (dir / "kh") + "\"\n";
  WriteFile(dir / "no-bundle.toml", base);
  WriteFile(dir / "no-server.toml", "known_hosts = \"x\"\nca_bundle = \"y\"\n");
  WriteFile(dir / "unknown-key.toml", base + "ca_bundle = \"y\"\ncolour = \"blue\"\n");
  for (const std::string& file : {dir / "no-bundle.toml", dir / "no-server.toml",
                                  dir / "unknown-key.toml", dir / "missing.toml", std::string()}) {
    for (const char* op : {"SUBMIT", "POLL", "FETCH-ROOTS"}) {
      Answer a = Helper({{"CERTMONGER_OPERATION", op}, {"CERTMONGER_CSR", "x"}}, file);
      EXPECT_EQ(a.status, 4) << file << " " << op;
      EXPECT_EQ(a.out.rfind("etcd-requester: bad-config: ", 0), 0u) << a.out;
      EXPECT_EQ(a.out.back(), '\n');
      EXPECT_EQ(a.out.find('\n'), a.out.size() - 1) << "one line: " << a.out;
    }
  }
}

TEST(CertmongerHelper, ACsrItCannotReadIsRejectedBeforeAnyConnection) {
  TempDir dir;
  // Port 1 on loopback: were a connection attempted, the answer would be 3, not 2 or 4.
  WriteFile(dir / "ok.toml", "server = \"signer@127.0.0.1:1\"\nknown_hosts = \"" + (dir / "kh") +
                                 "\"\nca_bundle = \"" + (dir / "ca.pem") +
                                 "\"\nconnect_timeout = 1\n");
  Answer none = Helper({{"CERTMONGER_OPERATION", "SUBMIT"}}, dir / "ok.toml");
  EXPECT_EQ(none.status, 4);
  EXPECT_EQ(none.out.rfind("etcd-requester: no-csr: ", 0), 0u) << none.out;
  Answer junk =
      Helper({{"CERTMONGER_OPERATION", "SUBMIT"},
              {"CERTMONGER_CSR", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}},
             dir / "ok.toml");
  EXPECT_EQ(junk.status, 2);
  EXPECT_EQ(junk.out.rfind("etcd-requester: not-a-csr: ", 0), 0u) << junk.out;
}

}  // namespace
