// tkmsctl mikey decode / encode: see mikey_command.h.
#include "tools/tkmsctl/mikey_command.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "tools/tkmsctl/mikey_json.h"

namespace tkms::tkmsctl {
namespace {

constexpr std::string_view kPrefix = "tkmsctl: ";

CommandOutput Failure(std::string message) {
  return CommandOutput{kExitInvalid, "", std::string(kPrefix) + message + "\n"};
}

std::string LimitText(size_t limit) {
  return "the limit of " + std::to_string(limit) + " bytes" + (limit == kMaxInputBytes ? " (1 MiB)" : "");
}

}  // namespace

CommandOutput RunMikeyDecode(ByteSpan input, const DecodeCommandOptions& options) {
  try {
    auto extracted = ExtractMikeyMessage(input, options.format);
    if (!extracted.ok()) return Failure(extracted.error().ToString());
    auto message = mikey::Decode(extracted->bytes);
    if (!message.ok()) {
      CommandOutput out = Failure(message.error().ToString());
      if (extracted->format != InputFormat::kRaw) {
        out.err += std::string(kPrefix) + "note: input read as " +
                   std::string(InputFormatName(extracted->format)) +
                   "; the offset counts bytes of the binary MIKEY message (" +
                   std::to_string(extracted->bytes.size()) + " bytes)\n";
      }
      return out;
    }
    const Json json = MessageToJson(*message);
    std::string text = options.compact ? json.dump() : json.dump(2);
    text.push_back('\n');
    return CommandOutput{kExitOk, std::move(text), ""};
  } catch (const std::exception& e) {
    return Failure(std::string("internal error: ") + e.what());
  }
}

CommandOutput RunMikeyEncode(ByteSpan input) {
  try {
    if (input.size() > kMaxInputBytes) {
      return Failure("input of " + std::to_string(input.size()) + " bytes exceeds " + LimitText(kMaxInputBytes));
    }
    const std::string_view text(reinterpret_cast<const char*>(input.data()), input.size());
    auto encoded = EncodeJsonText(text);
    if (!encoded.ok()) return Failure(encoded.error().ToString());
    return CommandOutput{kExitOk, Base64Encode(*encoded) + "\n", ""};
  } catch (const std::exception& e) {
    return Failure(std::string("internal error: ") + e.what());
  }
}

Result<std::vector<uint8_t>, std::string> ReadInputFile(const std::string& path, size_t limit) {
  const bool is_stdin = path == "-";
  const std::string name = is_stdin ? "standard input" : "'" + path + "'";
  std::FILE* file = is_stdin ? stdin : std::fopen(path.c_str(), "rb");
  if (file == nullptr) return "cannot open " + name + ": " + std::strerror(errno);
  std::vector<uint8_t> data;
  std::array<uint8_t, 16384> chunk{};
  std::string error;
  for (;;) {
    const size_t n = std::fread(chunk.data(), 1, chunk.size(), file);
    if (n > limit - data.size()) {
      error = name + " exceeds " + LimitText(limit);
      break;
    }
    data.insert(data.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(n));
    if (n < chunk.size()) {
      if (std::ferror(file) != 0) error = "cannot read " + name + ": " + std::strerror(errno);
      break;
    }
  }
  if (!is_stdin) std::fclose(file);
  if (!error.empty()) return error;
  return data;
}

}  // namespace tkms::tkmsctl
