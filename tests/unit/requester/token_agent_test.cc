// SPDX-License-Identifier: Apache-2.0
// The in-process ssh-agent that lets libssh authenticate with a token key (#11): its public key
// lines match OpenSSH's, it signs SSH userauth requests (verifiable with the public key) and
// refuses everything else.
#include <gtest/gtest.h>
#include <openssl/ecdsa.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <cstdint>

#include "pki/openssl.h"
#include "requester/token_agent.h"
#include "test_support.h"

namespace {

using testing_support::TempDir;

std::string Frame(const std::string& body) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((body.size() >> shift) & 0xff));
  return out + body;
}
std::string Str(const std::string& s) { return Frame(s); }
std::uint32_t U32(const std::string& s, std::size_t at) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(s[at + i]);
  return v;
}
std::string Take(const std::string& s, std::size_t& at) {
  std::uint32_t len = U32(s, at);
  std::string out = s.substr(at + 4, len);
  at += 4 + len;
  return out;
}
std::string Ask(int fd, const std::string& body) {
  std::string framed = Frame(body);
  EXPECT_EQ(::write(fd, framed.data(), framed.size()), static_cast<ssize_t>(framed.size()));
  char header[4];
  EXPECT_EQ(::read(fd, header, 4), 4);
  std::uint32_t len = U32(std::string(header, 4), 0);
  std::string reply(len, '\0');
  std::size_t got = 0;
  while (got < len) {
    ssize_t n = ::read(fd, reply.data() + got, len - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  return reply;
}

TEST(TokenAgent, PublicKeyLinesAreOpenSshs) {
  TempDir dir;
  struct Case {
    const char* alg;
    const char* param;
  };
  for (auto [alg, param] : {Case{"EC", "P-256"}, Case{"EC", "P-384"}, Case{"RSA", nullptr}}) {
    pki::EvpPkeyPtr key(param ? EVP_PKEY_Q_keygen(nullptr, nullptr, alg, param)
                              : EVP_PKEY_Q_keygen(nullptr, nullptr, alg, static_cast<size_t>(2048)));
    pki::BioPtr bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    long len = BIO_get_mem_data(bio.get(), &data);
    testing_support::WriteFile(dir / "k", std::string(data, static_cast<std::size_t>(len)), 0600);
    auto r = testing_support::Run({"/usr/bin/ssh-keygen", "-y", "-f", dir / "k"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(requester::AuthorizedKeysLine(key.get(), "") + "\n", r.out) << alg;
  }
  pki::EvpPkeyPtr ed(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  EXPECT_THROW(requester::SshPublicKeyBlob(ed.get()), base::Failure);
}

TEST(TokenAgent, SignsUserauthRequestsWithItsOneKeyAndNothingElse) {
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  requester::TokenAgent agent(key.get());
  std::string identities = Ask(agent.client_fd(), std::string(1, 11));
  ASSERT_EQ(identities[0], 12);
  EXPECT_EQ(U32(identities, 1), 1u);
  std::size_t at = 5;
  std::string blob = Take(identities, at);
  EXPECT_EQ(blob, requester::SshPublicKeyBlob(key.get()));

  std::string userauth = Str(std::string(32, 'S')) + std::string(1, 50) + Str("etcd-signer") + "rest";
  std::string reply = Ask(agent.client_fd(), std::string(1, 13) + Str(blob) + Str(userauth) + std::string(4, '\0'));
  ASSERT_EQ(reply[0], 14);
  at = 1;
  std::string signature = Take(reply, at);
  at = 0;
  EXPECT_EQ(Take(signature, at), "ecdsa-sha2-nistp256");
  std::string rs = Take(signature, at);
  at = 0;
  std::string r = Take(rs, at), s = Take(rs, at);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(r.data()), static_cast<int>(r.size()), nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()), nullptr));
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(sig, &der);
  ECDSA_SIG_free(sig);
  pki::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  EXPECT_EQ(EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()), 1);
  EXPECT_EQ(EVP_DigestVerify(ctx.get(), der, static_cast<std::size_t>(der_len),
                             reinterpret_cast<const unsigned char*>(userauth.data()), userauth.size()),
            1);
  OPENSSL_free(der);

  // Not a userauth request, another key's blob, an unknown message: refused (SSH_AGENT_FAILURE).
  EXPECT_EQ(Ask(agent.client_fd(), std::string(1, 13) + Str(blob) + Str("arbitrary data") + std::string(4, '\0')),
            std::string(1, 5));
  pki::EvpPkeyPtr other(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  EXPECT_EQ(Ask(agent.client_fd(), std::string(1, 13) + Str(requester::SshPublicKeyBlob(other.get())) + Str(userauth) +
                                       std::string(4, '\0')),
            std::string(1, 5));
  EXPECT_EQ(Ask(agent.client_fd(), std::string(1, 17)), std::string(1, 5));  // add identity
}

TEST(TokenAgent, RsaSignsOnlyWithSha2) {
  pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
  requester::TokenAgent agent(key.get());
  std::string blob = requester::SshPublicKeyBlob(key.get());
  std::string userauth = Str(std::string(32, 'S')) + std::string(1, 50);
  EXPECT_EQ(Ask(agent.client_fd(), std::string(1, 13) + Str(blob) + Str(userauth) + std::string(4, '\0')),
            std::string(1, 5));  // ssh-rsa (SHA-1): never
  std::string reply = Ask(agent.client_fd(), std::string(1, 13) + Str(blob) + Str(userauth) + std::string("\0\0\0\2", 4));
  ASSERT_EQ(reply[0], 14);
  std::size_t at = 1;
  std::string signature = Take(reply, at);
  at = 0;
  EXPECT_EQ(Take(signature, at), "rsa-sha2-256");
}

}  // namespace
