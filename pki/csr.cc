// SPDX-License-Identifier: Apache-2.0
#include "pki/csr.h"

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <memory>
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

std::string ObjectName(const ASN1_OBJECT* object) {
  int nid = OBJ_obj2nid(object);
  if (nid != NID_undef) return OBJ_nid2sn(nid);
  char text[128];
  int n = OBJ_obj2txt(text, sizeof text, object, 1);
  return n > 0 && n < static_cast<int>(sizeof text) ? std::string(text) : "<unprintable OID>";
}

// `data` decoded as exactly one canonical DER value of type T: nothing after it, and encoding it
// again gives the same bytes (so that no two parsers can read the request differently). Null
// otherwise.
template <typename T>
using Owned = std::unique_ptr<T, void (*)(T*)>;

template <typename T>
Owned<T> DecodeExact(const unsigned char* data, long size, T* (*d2i)(T**, const unsigned char**, long),
                     int (*i2d)(const T*, unsigned char**), void (*free_fn)(T*)) {
  const unsigned char* p = data;
  Owned<T> value(d2i(nullptr, &p, size), free_fn);
  if (!value || p != data + size) return Owned<T>(nullptr, free_fn);
  unsigned char* again = nullptr;
  int n = i2d(value.get(), &again);
  bool same = n == size && std::memcmp(again, data, static_cast<std::size_t>(size)) == 0;
  OPENSSL_free(again);
  if (!same) return Owned<T>(nullptr, free_fn);
  return value;
}

void FreeExtensions(X509_EXTENSIONS* extensions) { sk_X509_EXTENSION_pop_free(extensions, X509_EXTENSION_free); }

// One Extension of an extensionRequest: its OID, criticality, and for the types the policy may
// accept, the value decoded strictly.
RequestedExtension DescribeExtension(X509_EXTENSION* extension) {
  RequestedExtension e;
  e.nid = OBJ_obj2nid(X509_EXTENSION_get_object(extension));
  e.name = ObjectName(X509_EXTENSION_get_object(extension));
  e.critical = X509_EXTENSION_get_critical(extension) == 1;
  const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(extension);
  const unsigned char* data = ASN1_STRING_get0_data(value);
  long size = ASN1_STRING_length(value);
  switch (e.nid) {
    case NID_basic_constraints:
      if (auto bc = DecodeExact(data, size, d2i_BASIC_CONSTRAINTS, i2d_BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free)) {
        e.decoded = true;
        e.ca = bc->ca != 0;
        e.has_path_len = bc->pathlen != nullptr;
      }
      break;
    case NID_subject_key_identifier:
      e.decoded = static_cast<bool>(DecodeExact(data, size, d2i_ASN1_OCTET_STRING, i2d_ASN1_OCTET_STRING,
                                                ASN1_OCTET_STRING_free));
      break;
    case NID_key_usage:
      if (auto bits = DecodeExact(data, size, d2i_ASN1_BIT_STRING, i2d_ASN1_BIT_STRING, ASN1_BIT_STRING_free)) {
        e.decoded = true;
        for (int bit = 0; bit < ASN1_STRING_length(bits.get()) * 8; ++bit) {
          if (ASN1_BIT_STRING_get_bit(bits.get(), bit) == 1) e.key_usage_bits.push_back(bit);
        }
      }
      break;
    case NID_ext_key_usage:
      if (auto eku = DecodeExact(data, size, d2i_EXTENDED_KEY_USAGE, i2d_EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free)) {
        e.decoded = true;
        for (int i = 0; i < sk_ASN1_OBJECT_num(eku.get()); ++i) {
          char text[128];
          int n = OBJ_obj2txt(text, sizeof text, sk_ASN1_OBJECT_value(eku.get(), i), 1);
          e.key_purposes.push_back(n > 0 && n < static_cast<int>(sizeof text) ? std::string(text) : "<unprintable OID>");
        }
      }
      break;
    default:
      break;
  }
  return e;
}

// The single value of a PKCS#9 extensionRequest: a canonical DER SEQUENCE OF Extension.
bool DecodeExtensionRequest(X509_ATTRIBUTE* attribute, std::vector<RequestedExtension>& out) {
  if (X509_ATTRIBUTE_count(attribute) != 1) return false;
  ASN1_TYPE* value = X509_ATTRIBUTE_get0_type(attribute, 0);
  if (value == nullptr || value->type != V_ASN1_SEQUENCE) return false;
  auto extensions = DecodeExact(ASN1_STRING_get0_data(value->value.sequence), ASN1_STRING_length(value->value.sequence),
                                d2i_X509_EXTENSIONS, i2d_X509_EXTENSIONS, FreeExtensions);
  if (!extensions) return false;
  for (int i = 0; i < sk_X509_EXTENSION_num(extensions.get()); ++i) {
    out.push_back(DescribeExtension(sk_X509_EXTENSION_value(extensions.get(), i)));
  }
  return true;
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
      ++facts.extension_requests;
      continue;
    }
    ++facts.other_attributes;
    if (nid == NID_friendlyName) {
      ++facts.friendly_names;
      ASN1_TYPE* value = X509_ATTRIBUTE_count(attr) == 1 ? X509_ATTRIBUTE_get0_type(attr, 0) : nullptr;
      if (value == nullptr || value->type != V_ASN1_BMPSTRING) facts.friendly_names_well_formed = false;
    } else {
      facts.unknown_attributes.push_back(ObjectName(X509_ATTRIBUTE_get0_object(attr)));
    }
  }
  // Only a lone PKCS#9 extensionRequest is decoded: with two, which one a CA reads is a matter of
  // implementation, and Microsoft's OID is not one this signer has a reason to understand.
  if (facts.extension_requests == 1) {
    int at = X509_REQ_get_attr_by_NID(req, NID_ext_req, -1);
    if (at >= 0) {
      facts.extension_request_decoded = DecodeExtensionRequest(X509_REQ_get_attr(req, at), facts.requested_extensions);
      if (!facts.extension_request_decoded) facts.requested_extensions.clear();
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
