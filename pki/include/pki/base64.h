// SPDX-License-Identifier: Apache-2.0
// Strict base64 (RFC 4648 §4, standard alphabet, padded). Whitespace anywhere is ignored; anything
// else that is not in the alphabet, misplaced padding, a length that is not a multiple of four, or
// non-zero unused bits is an error. The decoder is the one place attacker bytes are first touched.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pki {

std::optional<std::vector<unsigned char>> DecodeBase64(std::string_view text);
std::string EncodeBase64(const unsigned char* data, std::size_t size, std::size_t line_length = 0);

}  // namespace pki
