// Structured one-line logs: `ts=... level=info event=request id=r-12 status=200`.
//
// Why: an appliance's logs are read by machines (SIEM, log shippers) as much as
// by operators, so every line is logfmt: space-separated key=value pairs,
// values quoted when they contain spaces, quotes or '=', control characters
// escaped, so one event is exactly one line that cannot be forged by input.
// A line is written with one write(2) call, so concurrent threads never
// interleave. Callers never pass secret material (PINs, keys, MACs); values
// that come from the network are length-capped (kMaxValueBytes).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tkms {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

// Lines below this level are dropped (default kInfo).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Where lines go: a file descriptor (default 2, stderr).
void SetLogFd(int fd);

class LogLine {
 public:
  static constexpr size_t kMaxValueBytes = 256;

  LogLine(LogLevel level, std::string_view event);
  ~LogLine();  // writes the line (if the level is enabled)
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  LogLine& Add(std::string_view key, std::string_view value);
  LogLine& Add(std::string_view key, const char* value) { return Add(key, std::string_view(value)); }
  LogLine& Add(std::string_view key, const std::string& value) { return Add(key, std::string_view(value)); }
  LogLine& Add(std::string_view key, int64_t value);
  LogLine& Add(std::string_view key, uint64_t value);
  LogLine& Add(std::string_view key, int value) { return Add(key, static_cast<int64_t>(value)); }
  LogLine& Add(std::string_view key, unsigned value) { return Add(key, static_cast<uint64_t>(value)); }
  LogLine& Add(std::string_view key, bool value) { return Add(key, std::string_view(value ? "true" : "false")); }

  // The text so far (tests).
  const std::string& text() const { return line_; }

 private:
  bool enabled_;
  std::string line_;
};

// Formats one logfmt value (quoting / escaping as described above).
std::string LogValue(std::string_view value);

}  // namespace tkms
