// The state file of tkms-ue offer / finish (see state_file.h).
#include "tools/ue_cli/state_file.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

#include "firmware/base/encoding.h"

namespace tkms::ue_cli {
namespace {

constexpr std::string_view kFieldNames[] = {"initiator", "responder", "kms_identity", "forking",
                                            "reusable",  "csb_id",    "randri",       "timestamp",
                                            "valid_to",  "rtp_port",  "request_resp", "transfer_init"};
constexpr size_t kFieldCount = std::size(kFieldNames);

// Lines of `text` (LF ends, the last may lack one), never past its end.
class LineScanner {
 public:
  explicit LineScanner(std::string_view text) : rest_(text) {}
  bool Next(std::string_view& line) {
    if (rest_.empty()) return false;
    const size_t nl = rest_.find('\n');
    line = rest_.substr(0, nl);
    rest_ = nl == std::string_view::npos ? std::string_view() : rest_.substr(nl + 1);
    return true;
  }

 private:
  std::string_view rest_;
};

// A decimal number without sign, space or prefix that fits T.
template <typename T>
std::optional<T> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  if (!std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return std::nullopt;
  T value{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// A field name for an error message: short printable ASCII only.
std::string Shown(std::string_view key) {
  const bool plain = key.size() <= 32 && std::all_of(key.begin(), key.end(), [](char ch) {
                       return ch > 0x20 && ch < 0x7F;
                     });
  if (!plain) return "(unprintable or long)";
  // Built piecewise: g++ 12 at -O3 warns (-Wrestrict, a false positive)
  // about "literal" + std::string temporaries.
  std::string out;
  out.reserve(key.size() + 2);
  out.push_back('"');
  out.append(key);
  out.push_back('"');
  return out;
}

// Every field's value, each present exactly once.
Result<std::array<std::string_view, kFieldCount>> SplitFields(LineScanner& lines, const std::string& name) {
  std::array<std::optional<std::string_view>, kFieldCount> seen;
  for (std::string_view line; lines.Next(line);) {
    const size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return InvalidArgument(name + ": malformed state line");
    const std::string_view key = line.substr(0, sp);
    const auto* at = std::find(std::begin(kFieldNames), std::end(kFieldNames), key);
    if (at == std::end(kFieldNames)) return InvalidArgument(name + ": unknown state field " + Shown(key));
    auto& slot = seen[static_cast<size_t>(at - std::begin(kFieldNames))];
    if (slot) return InvalidArgument(name + ": state field " + std::string(key) + " twice");
    slot = line.substr(sp + 1);
  }
  std::array<std::string_view, kFieldCount> values;
  for (size_t i = 0; i < kFieldCount; ++i) {
    if (!seen[i]) return InvalidArgument(name + ": the state file lacks " + std::string(kFieldNames[i]));
    values[i] = *seen[i];
  }
  return values;
}

}  // namespace

Status CheckPrintable(const std::string& value, const std::string& what) {
  if (value.empty()) return InvalidArgument(what + " is empty");
  for (unsigned char ch : value) {
    if (ch < 0x20 || ch == 0x7F) return InvalidArgument(what + " contains a control character");
  }
  return Status::Ok();
}

std::string SerializeState(const OfferState& s) {
  std::string text = std::string(kStateMagic) + "\n";
  text += "initiator " + s.initiator + "\n";
  text += "responder " + s.responder + "\n";
  text += "kms_identity " + s.kms_identity + "\n";
  text += std::string("forking ") + (s.forking ? "1" : "0") + "\n";
  text += std::string("reusable ") + (s.reusable ? "1" : "0") + "\n";
  text += "csb_id " + std::to_string(s.csb_id) + "\n";
  text += "randri " + HexEncode(s.randri) + "\n";
  text += "timestamp " + std::to_string(s.timestamp) + "\n";
  text += "valid_to " + std::to_string(s.valid_to) + "\n";
  text += "rtp_port " + std::to_string(s.rtp_port) + "\n";
  text += "request_resp " + HexEncode(s.request_resp) + "\n";
  text += "transfer_init " + HexEncode(s.transfer_init) + "\n";
  return text;
}

Result<OfferState> ParseState(std::string_view text, const std::string& name) {
  if (text.size() > kMaxStateBytes) return InvalidArgument(name + " is too large");
  LineScanner lines(text);
  std::string_view magic;
  if (!lines.Next(magic)) magic = {};
  if (magic == "tkms-ue-state 1") {
    return InvalidArgument(name + " was written by an earlier tkms-ue (state version 1): make a new offer");
  }
  if (magic != kStateMagic) return InvalidArgument(name + " is not a tkms-ue state file");
  auto fields = SplitFields(lines, name);
  if (!fields.ok()) return fields.error();
  const auto field = [&](std::string_view key) {
    return (*fields)[static_cast<size_t>(std::find(std::begin(kFieldNames), std::end(kFieldNames), key) -
                                         std::begin(kFieldNames))];
  };
  OfferState s;
  s.initiator = std::string(field("initiator"));
  s.responder = std::string(field("responder"));
  s.kms_identity = std::string(field("kms_identity"));
  TKMS_RETURN_IF_ERROR(CheckPrintable(s.initiator, name + ": initiator"));
  TKMS_RETURN_IF_ERROR(CheckPrintable(s.responder, name + ": responder"));
  TKMS_RETURN_IF_ERROR(CheckPrintable(s.kms_identity, name + ": kms_identity"));
  for (std::string_view flag : {"forking", "reusable"}) {
    if (field(flag) != "0" && field(flag) != "1") {
      return InvalidArgument(name + ": " + std::string(flag) + " must be 0 or 1");
    }
  }
  s.forking = field("forking") == "1";
  s.reusable = field("reusable") == "1";
  const auto csb_id = ParseDecimal<uint32_t>(field("csb_id"));
  const auto timestamp = ParseDecimal<uint64_t>(field("timestamp"));
  const auto valid_to = ParseDecimal<uint64_t>(field("valid_to"));
  const auto rtp_port = ParseDecimal<uint16_t>(field("rtp_port"));
  if (!csb_id || !timestamp || !valid_to || !rtp_port) return InvalidArgument(name + ": bad number in the state file");
  s.csb_id = *csb_id;
  s.timestamp = *timestamp;
  s.valid_to = *valid_to;
  s.rtp_port = *rtp_port;
  auto randri = HexDecode(field("randri"));
  auto request_resp = HexDecode(field("request_resp"));
  auto transfer_init = HexDecode(field("transfer_init"));
  if (!randri || !request_resp || !transfer_init || randri->empty() || request_resp->empty() ||
      transfer_init->empty()) {
    return InvalidArgument(name + ": bad hex in the state file");
  }
  s.randri = std::move(*randri);
  s.request_resp = std::move(*request_resp);
  s.transfer_init = std::move(*transfer_init);
  return s;
}

}  // namespace tkms::ue_cli
