// SPDX-License-Identifier: Apache-2.0
#include "requester/log_time.h"

#include <sys/stat.h>

#include <cstdlib>
#include <string_view>

#include "base/duration.h"

namespace requester {

bool WritesToJournal(std::FILE* stream) {
  const char* value = std::getenv("JOURNAL_STREAM");
  if (value == nullptr || stream == nullptr) return false;
  struct stat st {};
  if (::fstat(::fileno(stream), &st) != 0) return false;
  return std::string_view(value) == std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
}

std::string LogTimePrefix(std::FILE* stream, std::chrono::system_clock::time_point now) {
  return WritesToJournal(stream) ? std::string() : base::FormatRfc3339(now) + " ";
}

}  // namespace requester
