// Loader for tests/vectors/crypto/kat.txt, the known-answer vectors that
// tests/crypto/kat_gen.py computes independently of the C++ code.
//
// Why: a vector that a test silently ignores proves nothing. Each record's
// fields are read through accessors that remember what was read; Finish()
// fails if a field the test asked for is missing or malformed, or if a field
// in the file was never read. Format (see kat_gen.py): blank-line separated
// records, each with at least one '#' comment line and `name = value` lines,
// `kind` naming the record type.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"

namespace tkms::test {

class KatRecord {
 public:
  KatRecord(std::string where, std::map<std::string, std::string> fields);

  // "file:line" of the record's first line, for failure messages.
  const std::string& where() const { return where_; }
  // The `kind` field (always present; it counts as read).
  const std::string& kind() const { return kind_; }

  std::string Str(const std::string& name);
  std::vector<uint8_t> Hex(const std::string& name);
  // "-" means absent.
  std::optional<std::vector<uint8_t>> OptionalHex(const std::string& name);
  // Comma-separated hex strings.
  std::vector<std::vector<uint8_t>> HexList(const std::string& name);
  // Decimal, or hexadecimal with a 0x prefix.
  uint64_t Uint(const std::string& name);

  // Ok iff every requested field existed and parsed and every field was read.
  Status Finish() const;

 private:
  const std::string* Field(const std::string& name);
  void Fail(const std::string& message) { errors_.push_back(message); }

  std::string where_;
  std::string kind_;
  std::map<std::string, std::string> fields_;
  std::set<std::string> read_;
  std::vector<std::string> errors_;
};

// Parses the text of a vector file; `file_name` is used in where().
Result<std::vector<KatRecord>> ParseKat(std::string_view text, const std::string& file_name);
Result<std::vector<KatRecord>> LoadKatFile(const std::string& path);
// The records of one kind from a vector file.
Result<std::vector<KatRecord>> LoadKatKind(const std::string& path, std::string_view kind);

#ifdef TKMS_SOURCE_DIR
inline std::string CryptoKatPath() {
  return std::string(TKMS_SOURCE_DIR) + "/tests/vectors/crypto/kat.txt";
}
#endif

}  // namespace tkms::test
