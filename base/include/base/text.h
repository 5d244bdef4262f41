// SPDX-License-Identifier: Apache-2.0
// Text that crosses a trust boundary on its way into a log line, an audit field or a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace base {

// `text` made safe for one line of a log or a terminal: printable ASCII (0x20-0x7e) is kept, every
// other byte (C0/C1 controls, DEL, any UTF-8 such as U+2028 or U+202E) becomes \xNN. At most
// `max_bytes` bytes of the input are used; a longer input ends in "...". The result is at most
// 4 * max_bytes + 3 bytes.
std::string Printable(std::string_view text, std::size_t max_bytes = 256);

// `text` made safe for a terminal while keeping readable UTF-8 (our own messages use "…" and
// "—"): printable ASCII and valid UTF-8 are kept, except the code points that move the cursor or
// reorder text (C1 controls U+0080-U+009F, U+200E/U+200F, U+2028/U+2029, U+202A-U+202E,
// U+2066-U+2069), which become \u{XXXX}; C0 controls, DEL and invalid UTF-8 bytes become \xNN.
std::string TerminalSafe(std::string_view text);

// The longest prefix of `text` of at most `max_bytes` bytes that does not split a UTF-8 sequence.
// Used to cap attacker-supplied fields before they are JSON-encoded.
std::string_view Utf8Prefix(std::string_view text, std::size_t max_bytes);

}  // namespace base
