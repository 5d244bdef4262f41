// SPDX-License-Identifier: Apache-2.0
#include "requester/token_agent.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>

#include "base/failure.h"
#include "pki/base64.h"
#include "pki/key.h"
#include "pki/openssl.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

// ssh-agent protocol (draft-miller-ssh-agent).
constexpr unsigned char kFailure = 5;
constexpr unsigned char kRequestIdentities = 11;
constexpr unsigned char kIdentitiesAnswer = 12;
constexpr unsigned char kSignRequest = 13;
constexpr unsigned char kSignResponse = 14;
constexpr std::uint32_t kRsaSha2_256 = 2;
constexpr std::uint32_t kRsaSha2_512 = 4;
constexpr std::size_t kMaxMessage = 256 * 1024;

void PutU32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void PutString(std::string& out, const std::string& s) {
  PutU32(out, static_cast<std::uint32_t>(s.size()));
  out += s;
}
// RFC 4251 mpint of a non-negative number given big-endian.
std::string Mpint(const unsigned char* be, std::size_t len) {
  while (len > 0 && *be == 0) ++be, --len;
  std::string v;
  if (len > 0 && (be[0] & 0x80) != 0) v.push_back('\0');
  v.append(reinterpret_cast<const char*>(be), len);
  std::string out;
  PutString(out, v);
  return out;
}
std::string MpintOf(const BIGNUM* bn) {
  std::string be(static_cast<std::size_t>(BN_num_bytes(bn)), '\0');
  BN_bn2bin(bn, reinterpret_cast<unsigned char*>(be.data()));
  return Mpint(reinterpret_cast<const unsigned char*>(be.data()), be.size());
}

struct Reader {
  std::string_view data;
  std::optional<std::uint32_t> U32() {
    if (data.size() < 4) return std::nullopt;
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(data[static_cast<std::size_t>(i)]);
    data.remove_prefix(4);
    return v;
  }
  std::optional<std::string> String() {
    auto len = U32();
    if (!len || *len > data.size()) return std::nullopt;
    std::string s(data.substr(0, *len));
    data.remove_prefix(*len);
    return s;
  }
};

struct SshKeyType {
  std::string name;   // key type in the blob
  std::string curve;  // "nistp256"/"nistp384" for EC
  const EVP_MD* md = nullptr;
};

SshKeyType TypeOf(EVP_PKEY* key) {
  pki::KeyDescription d = pki::DescribeKey(key);
  if (d.kind == pki::KeyDescription::Kind::kEc && d.curve == "P-256") return {"ecdsa-sha2-nistp256", "nistp256", EVP_sha256()};
  if (d.kind == pki::KeyDescription::Kind::kEc && d.curve == "P-384") return {"ecdsa-sha2-nistp384", "nistp384", EVP_sha384()};
  if (d.kind == pki::KeyDescription::Kind::kRsa) return {"ssh-rsa", "", nullptr};
  throw Failure(ExitCode::kConfig, "ssh-key", d.name + " keys cannot be SSH keys here (use EC P-256/P-384 or RSA)");
}

bool WriteAll(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}
bool ReadAll(int fd, char* buf, std::size_t len) {
  std::size_t done = 0;
  while (done < len) {
    ssize_t n = ::read(fd, buf + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// The SSH signature blob (string algorithm, string signature) for `data`, made by the token.
std::optional<std::string> Sign(EVP_PKEY* key, const std::string& data, std::uint32_t flags) {
  SshKeyType type = TypeOf(key);
  std::string algorithm = type.name;
  const EVP_MD* md = type.md;
  if (type.name == "ssh-rsa") {
    // Never SHA-1: an RSA signature is made only for rsa-sha2-256/512.
    if ((flags & kRsaSha2_512) != 0) {
      algorithm = "rsa-sha2-512";
      md = EVP_sha512();
    } else if ((flags & kRsaSha2_256) != 0) {
      algorithm = "rsa-sha2-256";
      md = EVP_sha256();
    } else {
      return std::nullopt;
    }
  }
  pki::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, key) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return std::nullopt;
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return std::nullopt;
  }
  sig.resize(len);
  std::string body;
  if (type.name == "ssh-rsa") {
    body = sig;
  } else {
    // DER ECDSA-Sig-Value → mpint r, mpint s (RFC 5656 §3.1.2).
    const unsigned char* p = reinterpret_cast<const unsigned char*>(sig.data());
    ECDSA_SIG* ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (ecdsa == nullptr) return std::nullopt;
    body = MpintOf(ECDSA_SIG_get0_r(ecdsa)) + MpintOf(ECDSA_SIG_get0_s(ecdsa));
    ECDSA_SIG_free(ecdsa);
  }
  std::string out;
  PutString(out, algorithm);
  PutString(out, body);
  return out;
}

// RFC 4252 §7: string session identifier, byte SSH_MSG_USERAUTH_REQUEST (50), ...
bool IsUserauthRequest(const std::string& data) {
  if (data.size() > 64 * 1024) return false;
  Reader r{data};
  auto session_id = r.String();
  return session_id && session_id->size() >= 20 && session_id->size() <= 64 && !r.data.empty() &&
         static_cast<unsigned char>(r.data[0]) == 50;
}

}  // namespace

std::string SshPublicKeyBlob(EVP_PKEY* key) {
  SshKeyType type = TypeOf(key);
  std::string blob;
  PutString(blob, type.name);
  if (type.name == "ssh-rsa") {
    BIGNUM* n = nullptr;
    BIGNUM* e = nullptr;
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1) {
      BN_free(n);
      throw Failure(ExitCode::kSoftware, "internal", "cannot read the RSA public key");
    }
    pki::BignumPtr n_owner(n), e_owner(e);
    blob += MpintOf(e) + MpintOf(n);
    return blob;
  }
  PutString(blob, type.curve);
  pki::EvpPkeyPtr canonical = pki::CanonicalPublicKey(key);  // the point, uncompressed
  std::size_t len = 0;
  EVP_PKEY_get_octet_string_param(canonical.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, nullptr, 0, &len);
  std::string point(len, '\0');
  if (EVP_PKEY_get_octet_string_param(canonical.get(), OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
                                      reinterpret_cast<unsigned char*>(point.data()), point.size(), &len) != 1) {
    throw Failure(ExitCode::kSoftware, "internal", "cannot read the EC public point");
  }
  PutString(blob, point);
  return blob;
}

std::string AuthorizedKeysLine(EVP_PKEY* key, const std::string& comment) {
  std::string blob = SshPublicKeyBlob(key);
  std::string type = TypeOf(key).name;
  return type + " " +
         pki::EncodeBase64(reinterpret_cast<const unsigned char*>(blob.data()), blob.size()) +
         (comment.empty() ? "" : " " + comment);
}

TokenAgent::TokenAgent(EVP_PKEY* key) : key_(key), blob_(SshPublicKeyBlob(key)) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw Failure(ExitCode::kSoftware, "internal", "socketpair failed");
  }
  client_fd_ = fds[0];
  server_fd_ = fds[1];
  thread_ = std::thread([this] { Serve(); });
}

TokenAgent::~TokenAgent() {
  // Closing our end makes the agent's read fail; it then closes its end and returns.
  ::shutdown(client_fd_, SHUT_RDWR);
  thread_.join();
  ::close(client_fd_);
}

void TokenAgent::Serve() {
  for (;;) {
    char header[4];
    if (!ReadAll(server_fd_, header, sizeof header)) break;
    Reader r{std::string_view(header, 4)};
    std::uint32_t len = *r.U32();
    if (len == 0 || len > kMaxMessage) break;
    std::string message(len, '\0');
    if (!ReadAll(server_fd_, message.data(), len)) break;
    auto type = static_cast<unsigned char>(message[0]);
    Reader body{std::string_view(message).substr(1)};
    std::string reply(1, static_cast<char>(kFailure));
    if (type == kRequestIdentities) {
      reply.assign(1, static_cast<char>(kIdentitiesAnswer));
      PutU32(reply, 1);
      PutString(reply, blob_);
      PutString(reply, "etcd-requester token key");
    } else if (type == kSignRequest) {
      auto blob = body.String();
      auto data = body.String();
      auto flags = body.U32();
      // Only our one key, and only data shaped like an SSH userauth request (it starts with the
      // session identifier string): nothing else is signed.
      if (blob && data && flags && *blob == blob_ && IsUserauthRequest(*data)) {
        if (auto sig = Sign(key_, *data, *flags)) {
          reply.assign(1, static_cast<char>(kSignResponse));
          PutString(reply, *sig);
        }
      }
    }
    std::string framed;
    PutString(framed, reply);
    if (!WriteAll(server_fd_, framed)) break;
  }
  ::close(server_fd_);
}

}  // namespace requester
