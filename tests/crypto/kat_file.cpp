#include "tests/crypto/kat_file.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "firmware/base/encoding.h"

namespace tkms::test {
namespace {

std::string Trim(std::string_view s) {
  const size_t begin = s.find_first_not_of(" \t\r");
  if (begin == std::string_view::npos) return "";
  const size_t end = s.find_last_not_of(" \t\r");
  return std::string(s.substr(begin, end - begin + 1));
}

std::optional<uint64_t> ParseUint(const std::string& text) {
  const bool hex = text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X');
  const std::string digits = hex ? text.substr(2) : text;
  if (digits.empty()) return std::nullopt;
  uint64_t value = 0;
  const uint64_t base = hex ? 16 : 10;
  for (char c : digits) {
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (hex && c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else if (hex && c >= 'A' && c <= 'F') {
      d = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    if (d >= base || value > (UINT64_MAX - d) / base) return std::nullopt;
    value = value * base + d;
  }
  return value;
}

struct Block {
  size_t first_line = 0;
  bool has_comment = false;
  std::vector<std::pair<size_t, std::string>> lines;  // non-comment lines
};

Result<std::optional<KatRecord>> BlockToRecord(const Block& block, const std::string& file_name) {
  const std::string where = file_name + ":" + std::to_string(block.first_line);
  if (block.lines.empty()) return std::optional<KatRecord>();  // comment-only block
  if (!block.has_comment) return InvalidArgument(where + ": record has no comment line");
  std::map<std::string, std::string> fields;
  for (const auto& [number, line] : block.lines) {
    const size_t eq = line.find('=');
    const std::string at = file_name + ":" + std::to_string(number);
    if (eq == std::string::npos) return InvalidArgument(at + ": expected `name = value`");
    std::string name = Trim(std::string_view(line).substr(0, eq));
    if (name.empty()) return InvalidArgument(at + ": empty field name");
    if (fields.count(name) != 0) return InvalidArgument(at + ": field " + name + " repeated");
    fields.emplace(std::move(name), Trim(std::string_view(line).substr(eq + 1)));
  }
  if (fields.count("kind") == 0) return InvalidArgument(where + ": record has no kind");
  return std::optional<KatRecord>(KatRecord(where, std::move(fields)));
}

}  // namespace

KatRecord::KatRecord(std::string where, std::map<std::string, std::string> fields)
    : where_(std::move(where)), fields_(std::move(fields)) {
  if (const std::string* kind = Field("kind")) kind_ = *kind;
}

const std::string* KatRecord::Field(const std::string& name) {
  auto it = fields_.find(name);
  if (it == fields_.end()) {
    Fail("missing field " + name);
    return nullptr;
  }
  read_.insert(name);
  return &it->second;
}

std::string KatRecord::Str(const std::string& name) {
  const std::string* value = Field(name);
  return value ? *value : std::string();
}

std::vector<uint8_t> KatRecord::Hex(const std::string& name) {
  const std::string* value = Field(name);
  if (!value) return {};
  std::optional<std::vector<uint8_t>> bytes = HexDecode(*value);
  if (!bytes) {
    Fail("field " + name + " is not hex");
    return {};
  }
  return *bytes;
}

std::optional<std::vector<uint8_t>> KatRecord::OptionalHex(const std::string& name) {
  const std::string* value = Field(name);
  if (!value || *value == "-") return std::nullopt;
  return Hex(name);
}

std::vector<std::vector<uint8_t>> KatRecord::HexList(const std::string& name) {
  const std::string* value = Field(name);
  std::vector<std::vector<uint8_t>> out;
  if (!value) return out;
  std::stringstream stream(*value);
  std::string item;
  while (std::getline(stream, item, ',')) {
    std::optional<std::vector<uint8_t>> bytes = HexDecode(Trim(item));
    if (!bytes) {
      Fail("field " + name + " has a part that is not hex");
      return {};
    }
    out.push_back(std::move(*bytes));
  }
  return out;
}

uint64_t KatRecord::Uint(const std::string& name) {
  const std::string* value = Field(name);
  if (!value) return 0;
  std::optional<uint64_t> number = ParseUint(*value);
  if (!number) {
    Fail("field " + name + " is not an unsigned integer");
    return 0;
  }
  return *number;
}

Status KatRecord::Finish() const {
  std::string problems;
  for (const std::string& error : errors_) problems += "; " + error;
  for (const auto& [name, value] : fields_) {
    if (read_.count(name) == 0) problems += "; unused field " + name;
  }
  if (problems.empty()) return Status::Ok();
  return InvalidArgument(where_ + " (" + kind_ + ")" + problems);
}

Result<std::vector<KatRecord>> ParseKat(std::string_view text, const std::string& file_name) {
  std::vector<KatRecord> records;
  Block block;
  size_t number = 0;
  auto flush = [&]() -> Status {
    Result<std::optional<KatRecord>> record = BlockToRecord(block, file_name);
    if (!record.ok()) return record.error();
    if (record->has_value()) records.push_back(std::move(**record));
    block = Block();
    return Status::Ok();
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++number;
    if (line.empty()) {
      TKMS_RETURN_IF_ERROR(flush());
      continue;
    }
    if (block.first_line == 0) block.first_line = number;
    if (line[0] == '#') {
      block.has_comment = true;
    } else {
      block.lines.emplace_back(number, line);
    }
  }
  TKMS_RETURN_IF_ERROR(flush());
  return records;
}

Result<std::vector<KatRecord>> LoadKatFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot open " + path);
  std::stringstream contents;
  contents << in.rdbuf();
  const size_t slash = path.find_last_of('/');
  return ParseKat(contents.str(), slash == std::string::npos ? path : path.substr(slash + 1));
}

Result<std::vector<KatRecord>> LoadKatKind(const std::string& path, std::string_view kind) {
  Result<std::vector<KatRecord>> all = LoadKatFile(path);
  if (!all.ok()) return all.error();
  std::vector<KatRecord> selected;
  for (KatRecord& record : *all) {
    if (record.kind() == kind) selected.push_back(std::move(record));
  }
  return selected;
}

}  // namespace tkms::test
