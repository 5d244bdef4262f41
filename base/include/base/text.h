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

// The longest prefix of `text` of at most `max_bytes` bytes that does not split a UTF-8 sequence.
// Used to cap attacker-supplied fields before they are JSON-encoded.
std::string_view Utf8Prefix(std::string_view text, std::size_t max_bytes);

}  // namespace base
