// JSON paths in messages: see json_path.h.
#include "firmware/json/json_path.h"

#include "firmware/base/printable.h"

namespace tkms::json {

bool IsPlainKey(std::string_view key) {
  if (key.empty() || key.size() > kMaxQuotedBytes) return false;
  for (const char c : key) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '_' && c != '-') return false;
  }
  return true;
}

std::string KeyPath(std::string_view parent, std::string_view key) {
  if (IsPlainKey(key)) {
    std::string out(parent);
    if (!out.empty()) out += '.';
    out += key;
    return out;
  }
  // (Built up by appending: g++ 12 -O3 reports a false -Wrestrict for
  // assigning "$" to a std::string here.)
  std::string out(parent.empty() ? std::string_view("$") : parent);
  out += '[';
  out += Quote(key);
  out += ']';
  return out;
}

std::string IndexPath(std::string_view parent, size_t index) {
  std::string out(parent.empty() ? std::string_view("$") : parent);
  out += '[';
  out += std::to_string(index);
  out += ']';
  return out;
}

std::string PathOrRoot(std::string_view path) { return path.empty() ? std::string("$") : std::string(path); }

}  // namespace tkms::json
