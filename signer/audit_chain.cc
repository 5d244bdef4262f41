// SPDX-License-Identifier: Apache-2.0
#include "signer/audit_chain.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/failure.h"
#include "base/path_trust.h"
#include "pki/openssl.h"

namespace signer {

const std::string kGenesisPrev(64, '0');

namespace {

constexpr std::size_t kMaxLineBytes = 1 << 20;

bool IsLowerHex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string Range(std::uint64_t from, std::uint64_t to) {
  return from == to ? "record " + std::to_string(from)
                    : "records " + std::to_string(from) + ".." + std::to_string(to);
}

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    pki::ThrowOpenSsl(base::ExitCode::kSoftware, "internal", "SHA-256 failed");
  }
  return pki::Hex(digest, size);
}

struct Sha256Stream::Impl {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), &EVP_MD_CTX_free};
};

Sha256Stream::Sha256Stream() : impl_(std::make_unique<Impl>()) {
  if (!impl_->ctx || EVP_DigestInit_ex(impl_->ctx.get(), EVP_sha256(), nullptr) != 1) {
    pki::ThrowOpenSsl(base::ExitCode::kSoftware, "internal", "SHA-256 failed");
  }
}

Sha256Stream::~Sha256Stream() = default;

void Sha256Stream::Update(std::string_view bytes) {
  if (EVP_DigestUpdate(impl_->ctx.get(), bytes.data(), bytes.size()) != 1) {
    pki::ThrowOpenSsl(base::ExitCode::kSoftware, "internal", "SHA-256 failed");
  }
}

std::string Sha256Stream::FinalHex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_DigestFinal_ex(impl_->ctx.get(), digest, &size) != 1) {
    pki::ThrowOpenSsl(base::ExitCode::kSoftware, "internal", "SHA-256 failed");
  }
  return pki::Hex(digest, size);
}

bool operator==(const ChainHead& a, const ChainHead& b) {
  return a.seq == b.seq && a.hash == b.hash;
}

std::string FormatHead(const ChainHead& head) {
  return std::to_string(head.seq) + ":" + head.hash;
}

std::optional<ChainHead> ParseHead(std::string_view text) {
  auto colon = text.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon > 19) return std::nullopt;
  ChainHead head;
  head.seq = 0;
  for (char c : text.substr(0, colon)) {
    if (c < '0' || c > '9') return std::nullopt;
    head.seq = head.seq * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (head.seq == 0 || !IsLowerHex64(text.substr(colon + 1))) return std::nullopt;
  head.hash = std::string(text.substr(colon + 1));
  return head;
}

bool SplitFlatRecord(std::string_view line, std::vector<RawField>& out) {
  out.clear();
  std::size_t i = 0;
  const std::size_t n = line.size();
  auto string_at = [&](std::string_view& value) {
    if (i >= n || line[i] != '"') return false;
    std::size_t start = ++i;
    while (i < n && line[i] != '"') {
      unsigned char c = static_cast<unsigned char>(line[i]);
      if (c == '\\' || c < 0x20 || c >= 0x80)
        return false;  // escapes and raw controls: the full parser
      ++i;
    }
    if (i >= n) return false;
    value = line.substr(start, i - start);
    ++i;
    return true;
  };
  if (n < 2 || line[0] != '{' || line[n - 1] != '}') return false;
  i = 1;
  if (line[i] == '}') return i + 1 == n;
  for (;;) {
    RawField f;
    if (!string_at(f.key) || i >= n || line[i] != ':') return false;
    ++i;
    if (i < n && line[i] == '"') {
      if (!string_at(f.value)) return false;
      f.is_string = true;
    } else {
      std::size_t start = i;
      if (i < n && line[i] == '-') ++i;
      std::size_t digits = i;
      while (i < n && line[i] >= '0' && line[i] <= '9') ++i;
      if (i > digits) {
        if (i - digits > 1 && line[digits] == '0') return false;
      } else {
        for (std::string_view literal : {"true", "false", "null"}) {
          if (line.substr(i, literal.size()) == literal) {
            i += literal.size();
            break;
          }
        }
        if (i == start) return false;
      }
      f.value = line.substr(start, i - start);
    }
    for (const auto& seen : out) {
      if (seen.key == f.key) return false;  // duplicate keys: let the full parser decide
    }
    out.push_back(f);
    if (i >= n) return false;
    if (line[i] == ',') {
      ++i;
      continue;
    }
    return line[i] == '}' && i + 1 == n;
  }
}

namespace {

// The fast path for lines as ToJson writes them; nullopt means "ask the full parser".
std::optional<ChainFields> FastChainFields(std::string_view line) {
  thread_local std::vector<RawField> fields;
  if (!SplitFlatRecord(line, fields) || fields.size() < 4) return std::nullopt;
  if (fields[0].key != "v" || fields[0].is_string || fields[0].value != "1") return std::nullopt;
  ChainFields out;
  bool has_seq = false, has_prev = false;
  for (const auto& f : fields) {
    if (f.key == "seq" && !f.is_string && !f.value.empty() && f.value[0] != '-' &&
        f.value.size() <= 19) {
      out.seq = std::stoull(std::string(f.value));
      has_seq = out.seq > 0;
    } else if (f.key == "prev" && f.is_string && IsLowerHex64(f.value)) {
      out.prev = std::string(f.value);
      has_prev = true;
    } else if (f.key == "time" && f.is_string) {
      out.time = std::string(f.value);
    } else if (f.key == "outcome" && f.is_string) {
      out.resync = f.value == "resync";
    }
  }
  if (!has_seq || !has_prev) return std::nullopt;
  return out;
}

}  // namespace

std::optional<ChainFields> ParseChainFields(std::string_view line, std::string* why, bool* legacy) {
  *legacy = false;
  if (auto fast = FastChainFields(line)) return fast;
  auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    *why = "not a JSON record";
    return std::nullopt;
  }
  auto v = j.find("v");
  if (v == j.end()) {
    auto program = j.find("program");
    *legacy = program != j.end() && program->is_string() && *program == "etcd-signer";
    *why = "a record without the chain fields v, seq and prev";
    return std::nullopt;
  }
  if (!v->is_number_unsigned() || *v != kAuditFormatVersion) {
    *why = "record format v=" + v->dump() + " is not known to this program (it knows v=1)";
    return std::nullopt;
  }
  auto seq = j.find("seq");
  auto prev = j.find("prev");
  auto time = j.find("time");
  if (seq == j.end() || !seq->is_number_unsigned() || seq->get<std::uint64_t>() == 0) {
    *why = "a v=1 record without a valid seq";
    return std::nullopt;
  }
  if (prev == j.end() || !prev->is_string() || !IsLowerHex64(prev->get_ref<const std::string&>())) {
    *why = "a v=1 record without a valid prev";
    return std::nullopt;
  }
  ChainFields fields;
  fields.seq = seq->get<std::uint64_t>();
  fields.prev = prev->get<std::string>();
  if (time != j.end() && time->is_string()) fields.time = time->get<std::string>();
  auto outcome = j.find("outcome");
  fields.resync = outcome != j.end() && outcome->is_string() && *outcome == "resync";
  return fields;
}

ChainHead ResumeHead(const base::LogHead& log) {
  if (auto stored = ParseHead(log.stored)) return *stored;
  if (log.last_line.empty()) return ChainHead{};
  std::string why;
  bool legacy = false;
  ChainHead head;
  head.hash = Sha256Hex(log.last_line);
  if (auto fields = ParseChainFields(log.last_line, &why, &legacy)) head.seq = fields->seq;
  // A line from before the chain (or one nobody can parse) anchors a new chain: seq 1 with that
  // line's hash as prev, which `audit verify` accepts only right after such a line.
  return head;
}

ChainResume ResumeChain(const base::LogHead& log) {
  if (auto stored = ParseHead(log.stored)) return {*stored, ""};
  ChainHead found = ResumeHead(log);
  std::optional<ChainHead> recorded = ParseHead(log.recorded);
  if (!recorded) return {found, ""};
  // A head was recorded and the log has changed size since: only a line on disk whose head was
  // not stored yet (a crash between the two fsyncs) may be recovered from.
  std::string why;
  bool legacy = false;
  std::optional<ChainFields> last =
      log.last_line.empty() ? std::nullopt : ParseChainFields(log.last_line, &why, &legacy);
  const std::string was = "the recorded head is seq " + FormatHead(*recorded);
  // A resync record chains on from the recorded head, not from what is left: its seq is past every
  // seq ever written (and syslogged), and `verify` finds the gap right before it.
  if (last) {
    if (last->seq == recorded->seq && found.hash == recorded->hash) return {found, ""};
    if (last->seq > recorded->seq && log.log_size > log.recorded_size) return {found, ""};
    if (last->seq < recorded->seq) {
      return {*recorded, "the log ends at seq " + std::to_string(last->seq) + " but " + was + ": " +
                             Range(last->seq + 1, recorded->seq) + " missing (the log was cut or replaced)"};
    }
    return {*recorded, "the log's last record, seq " + std::to_string(last->seq) + ", does not hash to " +
                           "the recorded head " + FormatHead(*recorded) + " (the log was rewritten)"};
  }
  return {*recorded, std::string(log.last_line.empty() ? "the log holds no complete record" : "the log's last line is not a chained record") +
                         " but " + was + " (the log was replaced, or an unchained line appended)"};
}

void ChainVerifier::BeginFile(const std::string& name) {
  file_ = name;
  line_ = 0;
}

std::string ChainVerifier::Here() const {
  return file_ + ":" + std::to_string(line_);
}

std::string ChainVerifier::Previous() const {
  return head_.seq == 0 ? std::string("the start")
                        : "seq " + std::to_string(head_.seq) + " at " + prev_location_;
}

bool ChainVerifier::Break(const std::string& message) {
  broken_ = ChainBreak{file_, line_, Here() + ": " + message};
  return false;
}

bool ChainVerifier::Feed(std::string_view line, bool terminated) {
  if (broken_) return false;
  ++line_;
  if (!terminated) {
    return Break(
        "the last line has no newline: a record torn by a writer killed mid-write, or a file cut "
        "short");
  }
  std::string why;
  bool legacy = false;
  auto fields = ParseChainFields(line, &why, &legacy);
  std::string hash = Sha256Hex(line);
  if (!fields) {
    if (legacy && records_ == 0) {
      // Written before the chain existed: accepted only before its first record.
      ++legacy_;
      prev_line_hash_ = hash;
      return true;
    }
    if (line.size() >= kMaxLineBytes) why = "a line longer than 1 MiB";
    return Break(why + (records_ > 0 ? " after " + Previous() : std::string()) +
                 ": a fragment left by a writer killed mid-write, or an inserted line");
  }
  // First: whatever else is wrong around it, the signer's own finding is the news.
  if (fields->resync) {
    return Break("seq " + std::to_string(fields->seq) +
                 " is a resync record: the signer found this log no longer ending in the head it had "
                 "recorded (cut, replaced or rewritten) and wrote this instead of serving a request; "
                 "its message names what is missing");
  }
  if (records_ == 0) {
    first_seq_ = fields->seq;
    first_time_ = fields->time;
    if (fields->seq == 1 && fields->prev != kGenesisPrev &&
        !(legacy_ > 0 && fields->prev == prev_line_hash_)) {
      return Break("seq 1 has prev " + fields->prev.substr(0, 12) +
                   "..., neither the genesis (64 zeros) nor the hash of the line before it");
    }
    // A first record with seq > 1: the older files were not given; its prev cannot be checked.
  } else {
    if (fields->seq != head_.seq + 1) {
      if (fields->seq > head_.seq + 1) {
        return Break("seq " + std::to_string(fields->seq) + " follows " + Previous() + ": " +
                     Range(head_.seq + 1, fields->seq - 1) +
                     (line_ == 1 ? " missing (a rotated file between them is missing?)"
                                 : " missing or out of order (deleted or moved lines)"));
      }
      return Break("seq " + std::to_string(fields->seq) + " follows " + Previous() +
                   ": a repeated or out-of-order record (inserted or moved lines)");
    }
    if (fields->prev != head_.hash) {
      return Break("seq " + std::to_string(fields->seq) + ": prev does not match the SHA-256 of " +
                   Previous() +
                   ": that line was changed after it was written, or this one was forged");
    }
  }
  auto [from, to] = expected_.equal_range(fields->seq);
  for (auto it = from; it != to; ++it) {
    if (hash != it->second) {
      return Break("seq " + std::to_string(fields->seq) + " hashes to " + hash + ", not to the head " +
                   FormatHead(ChainHead{it->first, it->second}) +
                   ": the record was changed after the head was taken");
    }
  }
  ++records_;
  head_.seq = fields->seq;
  head_.hash = hash;
  last_time_ = fields->time;
  prev_location_ = Here();
  prev_line_hash_ = hash;
  return true;
}

bool ChainVerifier::Finish() {
  if (broken_) return false;
  // The heads the files did not reach: past their end (cut), or before their first record.
  std::string where = prev_location_.empty() ? file_ : prev_location_;
  if (!expected_.empty() && expected_.rbegin()->first > head_.seq) {
    std::uint64_t seq = expected_.rbegin()->first;
    broken_ = ChainBreak{file_, line_,
                         where + ": the chain ends at seq " + std::to_string(head_.seq) + " but the head is seq " +
                             std::to_string(seq) + ": " + Range(head_.seq + 1, seq) +
                             " missing (the log was cut short)"};
    return false;
  }
  if (!expected_.empty() && (records_ == 0 || expected_.begin()->first < first_seq_)) {
    broken_ = ChainBreak{file_, line_,
                         where + ": the head's seq " + std::to_string(expected_.begin()->first) +
                             " is before the first record given (seq " + std::to_string(first_seq_) +
                             "): give the older files too"};
    return false;
  }
  return true;
}

base::UniqueFd OpenAuditFile(const std::string& path) {
  struct stat st {};
  base::UniqueFd fd = base::OpenRegularFile(path, "read-failed", st);
  if (auto problem = base::UnexpectedOwner(path, st)) {
    throw base::Failure(base::ExitCode::kNoInput, "audit-file-unsafe", *problem + ": not reading it as an audit log");
  }
  return fd;
}

void ForEachLine(const std::string& path, const std::function<bool(std::string_view, bool)>& each) {
  base::UniqueFd file = OpenAuditFile(path);
  const int fd = file.get();
  std::string buffer;
  std::string carry;      // a line that spans reads
  bool skipping = false;  // the rest of an over-long line
  std::vector<char> chunk(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      base::ThrowErrno("read-failed", "cannot read", path, errno);
    }
    if (n == 0) break;
    std::string_view data(chunk.data(), static_cast<std::size_t>(n));
    while (!data.empty()) {
      auto nl = data.find('\n');
      std::string_view piece = data.substr(0, nl);
      if (nl == std::string_view::npos) {
        if (!skipping)
          carry.append(piece.substr(0, kMaxLineBytes - std::min(kMaxLineBytes, carry.size())));
        break;
      }
      data.remove_prefix(nl + 1);
      bool go;
      if (carry.empty() && !skipping) {
        go = each(piece, true);
      } else {
        if (!skipping)
          carry.append(piece.substr(0, kMaxLineBytes - std::min(kMaxLineBytes, carry.size())));
        go = each(carry, true);
        carry.clear();
      }
      skipping = false;
      if (!go) return;
    }
    if (carry.size() >= kMaxLineBytes) skipping = true;
  }
  if (!carry.empty() || skipping) each(carry, false);
}

}  // namespace signer
