// PKCS#10 certificate signing requests: strict decoding and the facts the signer's policy judges,
// and building a CSR for the requester.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "pki/openssl.h"

namespace pki {

// Decodes a CSR from bytes that are either a PEM "CERTIFICATE REQUEST" (or "NEW CERTIFICATE
// REQUEST") block or exact DER (no trailing bytes, canonical encoding). Throws
// Failure(kDataErr, "not-a-csr") otherwise, e.g. for a certificate.
X509ReqPtr DecodeCsr(const std::vector<unsigned char>& bytes);

// Everything in a CSR that policy looks at. Nothing here is trusted: it describes the request.
struct CsrFacts {
  // Subject attributes in order, as (short name, UTF-8 value); a value that is not valid text
  // is reported as "<invalid>".
  std::vector<std::pair<std::string, std::string>> subject;
  bool requests_extensions = false;  // an extensionRequest attribute is present
  int other_attributes = 0;          // PKCS#10 attributes other than extensionRequest
  bool signature_valid = false;      // the self-signature verifies with the CSR's own key
  EvpPkeyPtr public_key;             // the requested subject key
};

CsrFacts InspectCsr(X509_REQ* req);

// Builds a CSR with subject CN=<common_name> only, no attributes, signed with SHA-256 by `key`
// (which may be a token-backed key: the signature is made wherever the key lives).
X509ReqPtr BuildCsr(const std::string& common_name, EVP_PKEY* key);

}  // namespace pki
