// SPDX-License-Identifier: Apache-2.0
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

// One extension inside a PKCS#9 extensionRequest, decoded as far as the signer's policy needs.
// `decoded` is true when the value is exactly one canonical DER encoding of the extension's type
// (for the four types below; false for every other type, which policy refuses anyway).
struct RequestedExtension {
  int nid = 0;               // NID_undef for an OID OpenSSL does not know
  std::string name;          // short name, or the dotted OID
  bool critical = false;
  bool decoded = false;
  bool ca = false;           // basicConstraints
  bool has_path_len = false;  // basicConstraints
  std::vector<int> key_usage_bits;       // keyUsage: the numbers of the bits that are set
  std::vector<std::string> key_purposes;  // extendedKeyUsage: dotted OIDs, in order
};

// Everything in a CSR that policy looks at. Nothing here is trusted: it describes the request.
struct CsrFacts {
  // Subject attributes in order, as (short name, UTF-8 value); a value that is not valid text
  // is reported as "<invalid>".
  std::vector<std::pair<std::string, std::string>> subject;
  bool requests_extensions = false;  // an extensionRequest attribute is present
  int other_attributes = 0;          // PKCS#10 attributes other than extensionRequest
  // In detail: how many extensionRequest attributes there are (PKCS#9 and Microsoft's OID), and
  // for exactly one PKCS#9 extensionRequest with exactly one value that is a canonical DER
  // SEQUENCE OF Extension, the extensions in order (extension_request_decoded). Microsoft's OID
  // is counted but never decoded.
  int extension_requests = 0;
  bool extension_request_decoded = false;
  std::vector<RequestedExtension> requested_extensions;
  // PKCS#9 friendlyName attributes (certmonger labels its requests with one) and whether each has
  // exactly one BMPString value; other attributes by short name (or dotted OID).
  int friendly_names = 0;
  bool friendly_names_well_formed = true;
  std::vector<std::string> unknown_attributes;
  bool signature_valid = false;      // the self-signature verifies with the CSR's own key
  EvpPkeyPtr public_key;             // the requested subject key
};

CsrFacts InspectCsr(X509_REQ* req);

// Builds a CSR with subject CN=<common_name> only, no attributes, signed with SHA-256 by `key`
// (which may be a token-backed key: the signature is made wherever the key lives).
X509ReqPtr BuildCsr(const std::string& common_name, EVP_PKEY* key);

}  // namespace pki
