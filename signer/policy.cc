// SPDX-License-Identifier: Apache-2.0
#include "signer/policy.h"

#include <openssl/obj_mac.h>

#include <optional>
#include <set>

#include "base/failure.h"
#include "base/name_pattern.h"
#include "base/text.h"
#include "pki/base64.h"
#include "pki/key.h"

namespace signer {
namespace {

using base::ExitCode;
using base::Failure;

[[noreturn]] void Refuse(const std::string& reason, const std::string& message) {
  throw Failure(ExitCode::kNoPerm, reason, message);
}

// Attacker text in messages (which reach the client, the audit record and syslog): bounded, and
// every byte that is not printable ASCII escaped.
std::string Quoted(const std::string& s) { return "'" + base::Printable(s, 80) + "'"; }

constexpr int kDigitalSignatureBit = 0;
constexpr int kKeyEnciphermentBit = 2;
constexpr const char* kClientAuthOid = "1.3.6.1.5.5.7.3.2";
constexpr const char* kServerAuthOid = "1.3.6.1.5.5.7.3.1";

// The key purposes a CSR may ask for under `profile`: the ones the certificate carries anyway.
bool PurposesWithin(const std::vector<std::string>& asked, pki::LeafProfile profile) {
  std::set<std::string> allowed{kClientAuthOid};
  if (pki::IsMemberProfile(profile)) allowed.insert(kServerAuthOid);
  std::set<std::string> seen;
  for (const std::string& oid : asked) {
    if (!allowed.count(oid) || !seen.insert(oid).second) return false;
  }
  return !asked.empty();
}

[[noreturn]] void RefuseExtensions(const std::string& what, pki::LeafProfile profile) {
  const bool member = pki::IsMemberProfile(profile);
  Refuse("extensions-requested",
         "the CSR requests " + what +
             ": the signer sets every extension itself" +
             (member ? std::string(" (a member's names come from its [members] table)") : std::string()) +
             "; send no extensionRequest, or one asking only for "
             "basicConstraints CA:FALSE, a subjectKeyIdentifier, keyUsage digitalSignature/keyEncipherment "
             "and extendedKeyUsage " + (member ? "serverAuth/clientAuth" : "clientAuth"));
}

// An extensionRequest is accepted only when everything in it is something the certificate gets
// anyway (§4 of protocol.md), so that nothing a client asks for is ever silently dropped: a client
// that asked for a SAN or CA:TRUE is told no rather than handed a certificate without it.
// certmonger always asks for a critical CA:FALSE and the key's SKI. Nothing is copied from it:
// the builder writes its own extensions.
void CheckRequestedExtensions(const pki::CsrFacts& csr, pki::LeafProfile profile) {
  if (!csr.requests_extensions) return;
  if (csr.extension_requests > 1) RefuseExtensions("extensions in more than one extensionRequest attribute", profile);
  if (!csr.extension_request_decoded) {
    RefuseExtensions("extensions in an extensionRequest that is not one well-formed DER list of extensions", profile);
  }
  std::set<std::string> seen;
  for (const pki::RequestedExtension& e : csr.requested_extensions) {
    if (!seen.insert(e.name).second) RefuseExtensions(Quoted(e.name) + " twice", profile);
    bool wanted = false;
    switch (e.nid) {
      case NID_basic_constraints:
        wanted = e.decoded && !e.ca && !e.has_path_len;
        break;
      case NID_subject_key_identifier:
        wanted = e.decoded;  // any value: the certificate's SKI is computed from the key
        break;
      case NID_key_usage:
        wanted = e.decoded && !e.key_usage_bits.empty();
        for (int bit : e.key_usage_bits) {
          if (bit != kDigitalSignatureBit && bit != kKeyEnciphermentBit) wanted = false;
        }
        break;
      case NID_ext_key_usage:
        wanted = e.decoded && PurposesWithin(e.key_purposes, profile);
        break;
      default:
        RefuseExtensions("the extension " + Quoted(e.name), profile);
    }
    if (!wanted) {
      RefuseExtensions(Quoted(e.name) + " with a value the " + pki::ProfileName(profile) + " profile does not have", profile);
    }
  }
}

void CheckAttributes(const pki::CsrFacts& csr) {
  if (!csr.unknown_attributes.empty()) {
    std::string names;
    for (const auto& n : csr.unknown_attributes) names += (names.empty() ? "" : ",") + n;
    Refuse("csr-attributes", "the CSR carries attributes [" + base::Printable(names, 120) +
                                 "] (e.g. challengePassword); send none (a friendlyName label is ignored)");
  }
  if (csr.friendly_names > 1 || !csr.friendly_names_well_formed) {
    Refuse("csr-attributes", "a friendlyName attribute must appear at most once, with one BMPString value");
  }
}

}  // namespace

pki::X509ReqPtr DecodeRequestBody(const std::string& body) {
  bool blank = body.find_first_not_of(" \t\r\n") == std::string::npos;
  if (blank) throw Failure(ExitCode::kDataErr, "empty-input", "no CSR was sent on stdin");
  auto der = pki::DecodeBase64(body);
  if (!der) {
    throw Failure(ExitCode::kDataErr, "not-base64",
                  "stdin must be the base64 encoding of a PEM or DER CSR");
  }
  return pki::DecodeCsr(*der);
}

base::Seconds GrantLifetime(std::optional<base::Seconds> requested, const SignerConfig& config) {
  base::Seconds lifetime = requested.value_or(config.lifetime_default);
  if (lifetime < config.lifetime_min) {
    Refuse("lifetime-too-short", "the requested lifetime " + base::FormatDuration(lifetime) +
                                     " is below the minimum " +
                                     base::FormatDuration(config.lifetime_min));
  }
  return std::min(lifetime, config.lifetime_max);
}

void CheckName(const std::string& cn, const SignerConfig& config) {
  if (cn.empty()) Refuse("name-policy", "the CSR has an empty common name");
  if (cn.size() > kMaxCommonNameLength) {
    Refuse("name-policy", "the common name is longer than 64 characters");
  }
  if (!base::CompiledNamePattern(config.name_pattern).Matches(cn)) {
    Refuse("name-policy", "the name " + Quoted(cn) + " does not match the master-name pattern " +
                              config.name_pattern);
  }
  if (!config.identity.empty() && cn != config.identity) {
    Refuse("identity-mismatch", "this SSH key may only request certificates for '" +
                                    config.identity + "', not " + Quoted(cn));
  }
}

pki::SubjectAltNames CheckRole(const std::string& cn, pki::LeafProfile profile, const SignerConfig& config) {
  // The SSH key's binding decides the role when there is one; otherwise the name asked for.
  const std::string& who = config.identity.empty() ? cn : config.identity;
  auto member = config.members.find(who);
  if (!pki::IsMemberProfile(profile)) {
    if (member != config.members.end()) {
      Refuse("profile-not-allowed", "'" + who + "' is an etcd member: it may request etcd-server or etcd-peer only, "
                                    "not etcd-client");
    }
    CheckName(cn, config);
    return {};
  }
  if (config.identity.empty()) {
    Refuse("member-identity-required", std::string(pki::ProfileName(profile)) +
                                           " certificates are issued only to an SSH key bound to a member "
                                           "(--identity NAME in authorized_keys)");
  }
  if (member == config.members.end()) {
    if (base::CompiledNamePattern(config.name_pattern).Matches(who)) {
      Refuse("profile-not-allowed", "'" + who + "' is a master: it may request etcd-client only, not " +
                                        pki::ProfileName(profile));
    }
    Refuse("member-unknown", "'" + who + "' is not a configured etcd member ([members." + who + "] in signer.toml)");
  }
  if (cn != config.identity) {
    Refuse("identity-mismatch", "this SSH key may only request certificates for '" + config.identity + "', not " +
                                    Quoted(cn));
  }
  return member->second;
}

Approval ApplyPolicy(X509_REQ* req, std::optional<base::Seconds> requested_lifetime,
                     const SignerConfig& config, RequestFacts& facts, pki::LeafProfile profile) {
  facts.requested_lifetime = requested_lifetime;
  pki::CsrFacts csr = pki::InspectCsr(req);
  for (const auto& [name, value] : csr.subject) {
    if (name == "CN" && facts.common_name.empty()) facts.common_name = value;
  }
  if (!csr.public_key) {
    throw Failure(ExitCode::kDataErr, "not-a-csr", "the CSR's public key cannot be decoded");
  }
  pki::KeyDescription key = pki::DescribeKey(csr.public_key.get());
  facts.key_type = key.name;
  // The key's one identity (#24): its canonical SubjectPublicKeyInfo, whatever encoding the CSR
  // used (a compressed point is the same key), and its SHA-256. Computed here once; the deny and
  // approval lists, the audit record and the certificate all take it from here.
  std::optional<pki::CanonicalKey> canonical;
  if (key.kind != pki::KeyDescription::Kind::kOther) {
    try {
      canonical = pki::CanonicalizeKey(csr.public_key.get());
    } catch (const Failure&) {
      // No canonical form (an unnamed curve): refused below; the record names the key as sent.
    }
  }
  facts.public_key_sha256 =
      canonical ? canonical->sha256 : pki::Sha256Hex(pki::PublicKeyToDer(csr.public_key.get()));
  // Proof of possession first: nothing else in an unsigned request deserves an answer.
  if (!csr.signature_valid) {
    throw Failure(ExitCode::kDataErr, "bad-signature",
                  "the CSR's self-signature does not verify with its own key");
  }
  if (csr.subject.size() != 1 || csr.subject[0].first != "CN") {
    std::string names;
    for (const auto& [name, value] : csr.subject) names += (names.empty() ? "" : ",") + name;
    Refuse(csr.subject.empty() ? "name-policy" : "subject-attributes",
           csr.subject.empty() ? "the CSR has no subject"
                               : "the subject must be exactly one CN, not [" + names +
                                     "]: the signer copies nothing else");
  }
  pki::SubjectAltNames names = CheckRole(facts.common_name, profile, config);
  CheckRequestedExtensions(csr, profile);
  CheckAttributes(csr);
  switch (key.kind) {
    case pki::KeyDescription::Kind::kEc:
      // RFC 5480: namedCurve only. Explicit parameters are where curve-substitution bugs live
      // (CVE-2020-0601), and Go (etcd) refuses certificates that carry them. A compressed point
      // is accepted: the certificate is built from the key's numbers, uncompressed.
      if (key.ec_explicit_parameters) {
        Refuse("key-type", "the EC key spells out its curve parameters; send a key that names its curve "
                           "(namedCurve, RFC 5480)");
      }
      if (key.curve != "P-256" && key.curve != "P-384") {
        Refuse("key-type", "EC curve " + key.curve + " is not accepted (use P-256 or P-384)");
      }
      break;
    case pki::KeyDescription::Kind::kRsa:
      if (key.bits < 2048 || key.bits > 8192) {
        Refuse("key-size", "RSA keys must have 2048 to 8192 bits, not " + std::to_string(key.bits));
      }
      if (!key.rsa_exponent_ok) Refuse("key-type", "the RSA public exponent must be odd and >= 65537");
      break;
    case pki::KeyDescription::Kind::kOther:
      Refuse("key-type", key.name + " keys are not accepted (use EC P-256/P-384 or RSA >= 2048)");
  }
  if (!canonical) Refuse("key-type", "the " + key.name + " key cannot be re-encoded canonically (RFC 5480/3279)");
  Approval approval;
  approval.common_name = facts.common_name;
  approval.profile = profile;
  approval.names = std::move(names);
  approval.public_key = std::move(csr.public_key);
  approval.key = std::move(*canonical);
  approval.lifetime = GrantLifetime(requested_lifetime, config);
  return approval;
}

}  // namespace signer
