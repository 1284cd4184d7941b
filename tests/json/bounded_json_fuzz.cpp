// Fuzz target: the bounded JSON reader (firmware/json/bounded_json.h), which
// reads every configuration, bundle and tkmsctl JSON input.
//
// Each input is parsed with small limits (so that every refusal is reached)
// into both DOM flavours. Properties:
//   * neither call crashes, throws or recurses without bound;
//   * both flavours agree: both accept, or both refuse with the same kind,
//     offset, path and message;
//   * a refusal's offset lies within the text (or at its end), its line and
//     column agree with the offset, and its message is short printable ASCII;
//   * the reader is never more lenient than nlohmann's own strict parser: what
//     it accepts, nlohmann::json::accept accepts too; and what it accepts
//     within the limits, it accepts again from its own output (dump), to an
//     equal value;
//   * an accepted value respects the limits (depth, strings).
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/json/bounded_json.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using tkms::json::Limits;
using tkms::json::ParseError;

constexpr const char* kTarget = "bounded_json_fuzz";
constexpr Limits kLimits{4096, 8, 64, 32};

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

bool IsShortPrintable(const std::string& text) {
  if (text.empty() || text.size() > 512) return false;
  for (const char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

void CheckError(std::string_view text, const ParseError& e) {
  Check(e.offset <= text.size() || e.kind == tkms::json::ErrorKind::kTooLarge, "the offset lies within the text");
  if (e.kind != tkms::json::ErrorKind::kTooLarge) {
    size_t line = 1;
    size_t column = 1;
    for (size_t i = 0; i < e.offset; ++i) {
      column = text[i] == '\n' ? 1 : column + 1;
      line += text[i] == '\n' ? 1 : 0;
    }
    Check(e.line == line && e.column == column, "line and column agree with the offset");
  }
  Check(IsShortPrintable(e.ToString()), "the message is short printable ASCII");
}

// Depth of containers and the longest string or key of a value, iteratively.
void Measure(const nlohmann::json& root, size_t& depth, size_t& longest) {
  struct Item {
    const nlohmann::json* value;
    size_t level;
  };
  std::vector<Item> stack{{&root, 1}};
  while (!stack.empty()) {
    const Item item = stack.back();
    stack.pop_back();
    if (item.value->is_string()) longest = std::max(longest, item.value->get_ref<const std::string&>().size());
    if (!item.value->is_structured()) continue;
    depth = std::max(depth, item.level);
    for (auto it = item.value->begin(); it != item.value->end(); ++it) {
      if (item.value->is_object()) longest = std::max(longest, it.key().size());
      stack.push_back({&*it, item.level + 1});
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto sorted = tkms::json::Parse(text, kLimits);
  auto ordered = tkms::json::ParseOrdered(text, kLimits);
  Check(sorted.ok() == ordered.ok(), "both flavours accept or both refuse");
  if (!sorted.ok()) {
    const ParseError& a = sorted.error();
    const ParseError& b = ordered.error();
    Check(a.kind == b.kind && a.offset == b.offset && a.path == b.path && a.message == b.message,
          "both flavours refuse the same way");
    CheckError(text, a);
    return 0;
  }
  Check(nlohmann::json::accept(text), "nlohmann's strict parser accepts what the reader accepts");
  size_t depth = 0;
  size_t longest = 0;
  Measure(*sorted, depth, longest);
  Check(depth <= kLimits.max_depth && longest <= kLimits.max_string_bytes, "accepted values respect the limits");
  const std::string again = sorted->dump();
  auto reparsed = tkms::json::Parse(again, Limits{1 << 20, kLimits.max_depth, kLimits.max_values, kLimits.max_string_bytes});
  Check(reparsed.ok() && *reparsed == *sorted, "the dump of an accepted value parses to an equal value");
  Check(ordered->dump() == nlohmann::ordered_json::parse(ordered->dump()).dump(), "the ordered dump is stable");
  return 0;
}
