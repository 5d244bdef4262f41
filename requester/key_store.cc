#include "requester/key_store.h"

#include <fcntl.h>
#include <openssl/pem.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/failure.h"
#include "base/files.h"
#include "hsm/session.h"
#include "hsm/uri.h"

namespace requester {
namespace {

using base::ExitCode;
using base::Failure;

class FileKeyStore : public KeyStore {
 public:
  explicit FileKeyStore(std::string path) : path_(std::move(path)) {}

  bool Open(bool create) override {
    std::string dir = std::filesystem::path(path_).parent_path().string();
    struct stat ds {};
    if (::stat(dir.empty() ? "." : dir.c_str(), &ds) == 0 && (ds.st_mode & S_IWOTH) &&
        !(ds.st_mode & S_ISVTX)) {
      throw Failure(ExitCode::kConfig, "key-file-unsafe",
                    "the key directory " + dir + " is writable by others");
    }
    struct stat st {};
    bool generated = false;
    if (::lstat(path_.c_str(), &st) != 0) {
      if (errno != ENOENT || !create) {
        throw Failure(ExitCode::kNoInput, "key-missing", "no key file " + path_ + " (run 'request' first)");
      }
      pki::EvpPkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
      if (!key) pki::ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot generate a key");
      pki::BioPtr bio(BIO_new(BIO_s_mem()));
      if (PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
        pki::ThrowOpenSsl(ExitCode::kSoftware, "internal", "cannot encode the key");
      }
      char* data = nullptr;
      long len = BIO_get_mem_data(bio.get(), &data);
      std::string pem(data, static_cast<std::size_t>(len));
      base::WriteNewFileExclusive(path_, pem, 0600);
      base::Scrub(pem);
      generated = true;
    }
    CheckKeyFileSafety(path_);
    std::string pem = base::ReadFileLimited(path_, 64 * 1024, "key-file");
    pki::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    key_.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
    base::Scrub(pem);
    if (!key_) pki::ThrowOpenSsl(ExitCode::kDataErr, "key-unreadable", "cannot read the key file " + path_);
    return generated;
  }

  EVP_PKEY* private_key() override { return key_.get(); }
  EVP_PKEY* public_key() override { return key_.get(); }
  std::string Describe() const override { return "key file " + path_; }

 private:
  std::string path_;
  pki::EvpPkeyPtr key_;
};

class TokenKeyStore : public KeyStore {
 public:
  explicit TokenKeyStore(const RequesterConfig& c) : config_(c) {}

  bool Open(bool create) override {
    uri_ = hsm::Pkcs11Uri::Parse(config_.key_uri);
    module_.emplace(hsm::ModulePath(config_.module, &uri_));
    session_.emplace(*module_, hsm::SelectorFor(uri_), /*read_write=*/create);
    std::string pin = hsm::ReadPin(config_.pin, &uri_);
    try {
      session_->Login(pin);  // once: a wrong PIN counts towards the TPM's lockout
    } catch (...) {
      base::Scrub(pin);
      throw;
    }
    base::Scrub(pin);
    bool generated = false;
    try {
      key_ = session_->FindPrivateKey(uri_.object, uri_.id);
    } catch (const Failure& f) {
      if (f.reason() != "key-not-found" || !create) throw;
      if (!uri_.object) {
        throw Failure(ExitCode::kUsage, "bad-uri", "the key URI needs object=LABEL to create a key");
      }
      session_->GenerateKeyPair(hsm::KeyType::kEcP256, *uri_.object);
      key_ = session_->FindPrivateKey(uri_.object, std::nullopt);
      generated = true;
    }
    return generated;
  }

  EVP_PKEY* private_key() override { return key_.private_key.get(); }
  EVP_PKEY* public_key() override { return key_.public_key.get(); }
  std::string Describe() const override { return "token key " + config_.key_uri; }

  ~TokenKeyStore() override {
    // Token-backed keys go before their session and module.
    key_ = hsm::TokenKey{};
    session_.reset();
    module_.reset();
  }

 private:
  const RequesterConfig& config_;
  hsm::Pkcs11Uri uri_;
  std::optional<hsm::Module> module_;
  std::optional<hsm::Session> session_;
  hsm::TokenKey key_;
};

}  // namespace

void CheckKeyFileSafety(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) base::ThrowErrno("key-missing", "cannot stat", path, errno);
  if (S_ISLNK(st.st_mode) || !S_ISREG(st.st_mode)) {
    throw Failure(ExitCode::kConfig, "key-file-unsafe", path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    throw Failure(ExitCode::kConfig, "key-file-unsafe",
                  "the key file " + path + " is accessible by group or others; chmod 0600 it");
  }
}

std::unique_ptr<KeyStore> MakeKeyStore(const RequesterConfig& config) {
  if (!config.key_file.empty()) return std::make_unique<FileKeyStore>(config.key_file);
  return std::make_unique<TokenKeyStore>(config);
}

}  // namespace requester
