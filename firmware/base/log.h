// Structured one-line logs: `ts=... level=info event=request id=r-12 status=200`.
//
// Why: an appliance's logs are read by machines (SIEM, log shippers) as much as
// by operators, so every line is logfmt: space-separated key=value pairs,
// values quoted when they contain spaces, quotes or '=', control characters
// escaped, so one event is exactly one line that cannot be forged by input.
// A line is written with one write(2) call, so concurrent threads never
// interleave. Callers never pass secret material (PINs, keys, MACs); values
// that come from the network are length-capped (kMaxValueBytes).
//
// Ordinary lines and audit records (issue 14, docs/reliability.md "Disk
// faults"): an ordinary line is written by the destructor, and a line that
// cannot be written (ENOSPC, EIO, a closed pipe) is counted
// (LogWriteFailures) and otherwise ignored, so a broken log never stops the
// service. An audit line (an `audit=1` record, e.g. who got which keys on
// Zk) is the record of an action: its owner calls Emit() BEFORE the action
// takes effect and refuses the action if Emit() fails. Audit lines are
// written whatever the log level.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "firmware/base/status.h"

namespace tkms {

enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };
// The kinds of audit record (tkms_audit_write_failures_total{record}).
enum class AuditRecord : uint8_t { kZkRequest, kBundle };
inline constexpr size_t kAuditRecordKinds = 2;
std::string_view AuditRecordName(AuditRecord record);  // "zk_request", "bundle"

// Lines below this level are dropped (default kInfo).
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Where lines go: a file descriptor (default 2, stderr).
void SetLogFd(int fd);

class LogLine {
 public:
  static constexpr size_t kMaxValueBytes = 256;

  LogLine(LogLevel level, std::string_view event);
  // An audit line of kind `record`: always enabled (whatever the log
  // level); `audit=1` follows the event.
  LogLine(LogLevel level, std::string_view event, AuditRecord record);
  // Writes the line (if the level is enabled and Emit() was not called);
  // a failure is counted in LogWriteFailures().
  ~LogLine();
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

  // Writes the line now, completely (partial writes are continued, EINTR
  // retried, EAGAIN waited for up to one second), and reports whether the
  // whole line reached the log descriptor: Ok, or kUnavailable naming the
  // errno ("writing the log: No space left on device"). A line that is not
  // enabled is Ok without being written. The destructor then writes
  // nothing. A failed line is counted in LogWriteFailures() (ordinary
  // lines) or AuditWriteFailures() (audit lines). Calling Emit() twice
  // returns the first result.
  Status Emit();

  // The text so far (tests).
  const std::string& text() const { return line_; }

 private:
  bool enabled_;
  std::optional<AuditRecord> audit_;
  bool emitted_ = false;
  Status result_;
  std::string line_;
};

// Lines that could not be written since the start of the process: ordinary
// lines (tkms_log_write_failures_total) and audit records
// (tkms_audit_write_failures_total{record}). Audit records are the Zk
// audit lines (counted by LogLine) and the bundle audit log's records
// (counted by its writer with CountAuditWriteFailure).
uint64_t LogWriteFailures();
uint64_t AuditWriteFailures(AuditRecord record);
void CountAuditWriteFailure(AuditRecord record);

// Writes all of `bytes` to `fd` (partial writes continued, EINTR retried,
// EAGAIN waited for up to one second). kUnavailable with the errno's text
// (a zero-byte write counts as EIO).
Status WriteFully(int fd, std::string_view bytes);

// Formats one logfmt value (quoting / escaping as described above).
std::string LogValue(std::string_view value);

}  // namespace tkms
