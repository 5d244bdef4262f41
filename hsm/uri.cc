// SPDX-License-Identifier: Apache-2.0
#include "hsm/uri.h"

#include "base/failure.h"

namespace hsm {
namespace {

[[noreturn]] void Bad(const std::string& why) {
  throw base::Failure(base::ExitCode::kUsage, "bad-uri", "PKCS#11 URI: " + why);
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 7512 pchar/qchar without '%' escapes; everything else must be percent-encoded.
bool IsPlain(char c, bool query) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-': case '.': case '_': case '~': case ':': case '[': case ']': case '@': case '!':
    case '$': case '\'': case '(': case ')': case '*': case '+': case ',': case '=': case '&':
      return true;
    case '/': case '?': case '|':
      return query;
    default:
      return false;
  }
}

std::string Decode(std::string_view value, const std::string& attribute, bool query) {
  if (value.empty()) Bad("attribute '" + attribute + "' has an empty value");
  std::string out;
  for (std::size_t i = 0; i < value.size(); ++i) {
    char c = value[i];
    if (c == '%') {
      if (i + 2 >= value.size()) {
        Bad("truncated percent-encoding in '" + attribute + "'");
      }
      int hi = HexValue(value[i + 1]);
      int lo = HexValue(value[i + 2]);
      if (hi < 0 || lo < 0) Bad("bad percent-encoding in '" + attribute + "'");
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (IsPlain(c, query) && c != '&' && (query || c != '=')) {
      out.push_back(c);
    } else {
      Bad("character '" + std::string(1, c) + "' must be percent-encoded in '" + attribute + "'");
    }
  }
  return out;
}

void SetOnce(std::optional<std::string>& field, const std::string& attribute, std::string value) {
  if (field) Bad("attribute '" + attribute + "' appears twice");
  field = std::move(value);
}

std::string Encode(const std::string& value) {
  static const char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : value) {
    if (IsPlain(c, false) && c != '=' && c != '&' && c != ';') {
      out.push_back(c);
    } else {
      auto u = static_cast<unsigned char>(c);
      out += '%';
      out += kDigits[u >> 4];
      out += kDigits[u & 15];
    }
  }
  return out;
}

}  // namespace

Pkcs11Uri Pkcs11Uri::Parse(std::string_view text) {
  constexpr std::string_view kScheme = "pkcs11:";
  if (text.size() > 4096) Bad("too long");
  if (text.substr(0, kScheme.size()) != kScheme) Bad("must start with 'pkcs11:'");
  text.remove_prefix(kScheme.size());
  std::string_view path = text;
  std::string_view query;
  if (auto q = text.find('?'); q != std::string_view::npos) {
    path = text.substr(0, q);
    query = text.substr(q + 1);
    if (query.empty()) Bad("empty query after '?'");
  }
  Pkcs11Uri uri;
  auto each = [](std::string_view list, char separator, auto&& handle) {
    if (list.empty()) return;
    std::size_t start = 0;
    for (;;) {
      std::size_t end = list.find(separator, start);
      std::string_view part = list.substr(start, end == std::string_view::npos ? end : end - start);
      if (part.empty()) Bad("empty attribute (doubled or trailing separator)");
      std::size_t eq = part.find('=');
      if (eq == std::string_view::npos) Bad("attribute '" + std::string(part) + "' has no '='");
      handle(std::string(part.substr(0, eq)), part.substr(eq + 1));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
  };
  each(path, ';', [&](const std::string& name, std::string_view raw) {
    if (name.rfind("x-", 0) == 0) return;  // vendor extension: ignored by definition
    std::string value = Decode(raw, name, false);
    if (name == "token") {
      SetOnce(uri.token, name, value);
    } else if (name == "manufacturer") {
      SetOnce(uri.manufacturer, name, value);
    } else if (name == "serial") {
      SetOnce(uri.serial, name, value);
    } else if (name == "model") {
      SetOnce(uri.model, name, value);
    } else if (name == "object") {
      SetOnce(uri.object, name, value);
    } else if (name == "type") {
      if (value != "private" && value != "public" && value != "cert" && value != "secret-key" &&
          value != "data") {
        Bad("unknown type '" + value + "'");
      }
      SetOnce(uri.type, name, value);
    } else if (name == "id") {
      if (uri.id) Bad("attribute 'id' appears twice");
      uri.id = std::vector<unsigned char>(value.begin(), value.end());
    } else {
      Bad("unknown attribute '" + name + "'");
    }
  });
  each(query, '&', [&](const std::string& name, std::string_view raw) {
    if (name.rfind("x-", 0) == 0) return;
    if (name == "pin-value") {
      Bad("'pin-value' is refused: put the PIN in a file and use pin-source=file:/path");
    }
    std::string value = Decode(raw, name, true);
    if (name == "module-path") {
      SetOnce(uri.module_path, name, value);
    } else if (name == "pin-source") {
      if (value.rfind("file:", 0) == 0) value.erase(0, 5);
      if (value.empty() || value[0] != '/') Bad("pin-source must be an absolute file path");
      SetOnce(uri.pin_source, name, value);
    } else if (name == "module-name") {
      Bad("'module-name' is not supported: use module-path or --module");
    } else {
      Bad("unknown query attribute '" + name + "'");
    }
  });
  return uri;
}

std::string Pkcs11Uri::ToString() const {
  std::string out = "pkcs11:";
  std::string sep;
  auto add = [&](const char* name, const std::optional<std::string>& value) {
    if (!value) return;
    out += sep + name + "=" + Encode(*value);
    sep = ";";
  };
  add("token", token);
  add("manufacturer", manufacturer);
  add("serial", serial);
  add("model", model);
  add("object", object);
  if (id) add("id", std::string(id->begin(), id->end()));
  add("type", type);
  return out;
}

}  // namespace hsm
