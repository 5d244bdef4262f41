// SPDX-License-Identifier: Apache-2.0
#include "pki/base64.h"

#include <array>

namespace pki {
namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int, 256> MakeTable() {
  std::array<int, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(kAlphabet[i])] = i;
  return t;
}
constexpr auto kTable = MakeTable();

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
}  // namespace

std::optional<std::vector<unsigned char>> DecodeBase64(std::string_view text) {
  std::string compact;
  compact.reserve(text.size());
  for (char c : text) {
    if (!IsSpace(c)) compact.push_back(c);
  }
  if (compact.empty() || compact.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (compact.back() == '=') ++padding;
  if (compact.size() >= 2 && compact[compact.size() - 2] == '=') ++padding;
  std::vector<unsigned char> out;
  out.reserve(compact.size() / 4 * 3);
  for (std::size_t i = 0; i < compact.size(); i += 4) {
    bool last = i + 4 == compact.size();
    int v[4];
    for (int k = 0; k < 4; ++k) {
      char c = compact[i + static_cast<std::size_t>(k)];
      if (c == '=') {
        // '=' only in the last quantum, only in its last `padding` places.
        if (!last || k < 4 - static_cast<int>(padding)) return std::nullopt;
        v[k] = 0;
        continue;
      }
      v[k] = kTable[static_cast<unsigned char>(c)];
      if (v[k] < 0) return std::nullopt;
    }
    unsigned triple = (unsigned(v[0]) << 18) | (unsigned(v[1]) << 12) | (unsigned(v[2]) << 6) |
                      unsigned(v[3]);
    out.push_back(static_cast<unsigned char>(triple >> 16));
    if (!last || padding < 2) out.push_back(static_cast<unsigned char>(triple >> 8));
    if (!last || padding < 1) out.push_back(static_cast<unsigned char>(triple));
    // Canonical form: the bits dropped by padding must be zero.
    if (last && padding == 2 && (v[1] & 0x0f) != 0) return std::nullopt;
    if (last && padding == 1 && (v[2] & 0x03) != 0) return std::nullopt;
  }
  return out;
}

std::string EncodeBase64(const unsigned char* data, std::size_t size, std::size_t line_length) {
  std::string out;
  std::size_t column = 0;
  auto put = [&](char c) {
    out.push_back(c);
    if (line_length != 0 && ++column == line_length) {
      out.push_back('\n');
      column = 0;
    }
  };
  for (std::size_t i = 0; i < size; i += 3) {
    unsigned triple = unsigned(data[i]) << 16;
    if (i + 1 < size) triple |= unsigned(data[i + 1]) << 8;
    if (i + 2 < size) triple |= unsigned(data[i + 2]);
    put(kAlphabet[(triple >> 18) & 63]);
    put(kAlphabet[(triple >> 12) & 63]);
    put(i + 1 < size ? kAlphabet[(triple >> 6) & 63] : '=');
    put(i + 2 < size ? kAlphabet[triple & 63] : '=');
  }
  if (line_length != 0 && column != 0) out.push_back('\n');
  return out;
}

}  // namespace pki
