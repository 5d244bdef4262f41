// SPDX-License-Identifier: Apache-2.0
// RFC 7512 PKCS#11 URIs, parsed strictly.
//
//   pkcs11:token=etcd-ca;object=ca-key;type=private?module-path=/usr/lib/softhsm/libsofthsm2.so
//
// Accepted path attributes: token, manufacturer, serial, model, object, id, type; vendor
// attributes (x-...) are ignored. Accepted query attributes: module-path, pin-source
// (file:/path or a plain path). `pin-value` is refused: a PIN in a URI ends up in argv, shell
// history and logs. Unknown attributes, empty values, repeated attributes and bad
// percent-encoding are errors, because a typo must not silently select a different key.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hsm {

struct Pkcs11Uri {
  std::optional<std::string> token;
  std::optional<std::string> manufacturer;
  std::optional<std::string> serial;
  std::optional<std::string> model;
  std::optional<std::string> object;
  std::optional<std::vector<unsigned char>> id;
  std::optional<std::string> type;  // private, public, cert, secret-key, data
  std::optional<std::string> module_path;
  std::optional<std::string> pin_source;  // a file path (the "file:" prefix removed)

  // Throws base::Failure(kUsage, "bad-uri") with the offending part named.
  static Pkcs11Uri Parse(std::string_view text);

  // Canonical text form (percent-encoding where needed), for messages.
  std::string ToString() const;
};

}  // namespace hsm
