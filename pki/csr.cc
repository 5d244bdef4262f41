#include "pki/csr.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>

#include <cstring>
#include <string_view>

namespace pki {
namespace {

[[noreturn]] void NotACsr(const std::string& why) {
  ERR_clear_error();
  throw base::Failure(base::ExitCode::kDataErr, "not-a-csr", why);
}

bool StartsWith(const std::vector<unsigned char>& bytes, std::string_view prefix) {
  return bytes.size() >= prefix.size() &&
         std::memcmp(bytes.data(), prefix.data(), prefix.size()) == 0;
}

X509ReqPtr DecodeDer(const unsigned char* data, std::size_t size) {
  const unsigned char* p = data;
  X509ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(size)));
  if (!req) NotACsr("the input is not a PKCS#10 certificate signing request");
  if (p != data + size) NotACsr("the CSR is followed by trailing bytes");
  // Strict DER: re-encoding must reproduce the input exactly (no BER tricks, no
  // alternative encodings that other parsers could read differently).
  auto again = ToDer(req.get());
  if (again.size() != size || std::memcmp(again.data(), data, size) != 0) {
    NotACsr("the CSR is not in canonical DER");
  }
  return req;
}

}  // namespace

X509ReqPtr DecodeCsr(const std::vector<unsigned char>& bytes) {
  if (bytes.empty()) NotACsr("the input is empty");
  if (StartsWith(bytes, "-----BEGIN ")) {
    BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      NotACsr("the PEM text cannot be decoded");
    }
    std::string label = name;
    bool has_header = header != nullptr && header[0] != '\0';
    std::vector<unsigned char> der(data, data + len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (label != "CERTIFICATE REQUEST" && label != "NEW CERTIFICATE REQUEST") {
      NotACsr("the PEM block is a '" + label.substr(0, 40) + "', not a CERTIFICATE REQUEST");
    }
    if (has_header) NotACsr("the PEM block has headers");
    // Exactly one block: anything after it other than whitespace is refused.
    char rest[64];
    int n;
    while ((n = BIO_read(bio.get(), rest, sizeof rest)) > 0) {
      for (int i = 0; i < n; ++i) {
        if (!std::strchr(" \t\r\n", rest[i])) NotACsr("text follows the PEM block");
      }
    }
    return DecodeDer(der.data(), der.size());
  }
  return DecodeDer(bytes.data(), bytes.size());
}

CsrFacts InspectCsr(X509_REQ* req) {
  CsrFacts facts;
  X509_NAME* subject = X509_REQ_get_subject_name(req);
  for (int i = 0; i < X509_NAME_entry_count(subject); ++i) {
    X509_NAME_ENTRY* entry = X509_NAME_get_entry(subject, i);
    int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(entry));
    const char* sn = nid != NID_undef ? OBJ_nid2sn(nid) : "unknown-attribute";
    unsigned char* utf8 = nullptr;
    int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(entry));
    std::string value = len >= 0 ? std::string(reinterpret_cast<char*>(utf8),
                                               static_cast<std::size_t>(len))
                                 : "<invalid>";
    OPENSSL_free(utf8);
    facts.subject.emplace_back(sn, value);
  }
  for (int i = 0; i < X509_REQ_get_attr_count(req); ++i) {
    X509_ATTRIBUTE* attr = X509_REQ_get_attr(req, i);
    int nid = OBJ_obj2nid(X509_ATTRIBUTE_get0_object(attr));
    if (nid == NID_ext_req || nid == NID_ms_ext_req) {
      facts.requests_extensions = true;
    } else {
      ++facts.other_attributes;
    }
  }
  facts.public_key.reset(X509_REQ_get_pubkey(req));
  if (facts.public_key) {
    facts.signature_valid = X509_REQ_verify(req, facts.public_key.get()) == 1;
  }
  ERR_clear_error();
  return facts;
}

X509ReqPtr BuildCsr(const std::string& common_name, EVP_PKEY* key) {
  X509ReqPtr req(X509_REQ_new());
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  if (!req || X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                 -1, 0) != 1 ||
      X509_REQ_set_pubkey(req.get(), key) != 1) {
    ThrowOpenSsl(base::ExitCode::kSoftware, "csr-build", "cannot build the CSR");
  }
  if (X509_REQ_sign(req.get(), key, EVP_sha256()) <= 0) {
    ThrowOpenSsl(base::ExitCode::kUnavailable, "csr-sign", "cannot sign the CSR with the key");
  }
  return req;
}

}  // namespace pki
