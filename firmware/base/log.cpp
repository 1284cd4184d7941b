#include "firmware/base/log.h"

#include <poll.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <ctime>

namespace tkms {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<int> g_fd{2};
std::atomic<uint64_t> g_log_failures{0};
std::array<std::atomic<uint64_t>, kAuditRecordKinds> g_audit_failures{};

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

std::string Timestamp() {
  const auto now = std::chrono::system_clock::now();
  const auto secs = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(millis));
  return buf;
}

}  // namespace

std::string_view AuditRecordName(AuditRecord record) {
  switch (record) {
    case AuditRecord::kZkRequest: return "zk_request";
    case AuditRecord::kBundle: return "bundle";
  }
  return "unknown";
}

uint64_t LogWriteFailures() { return g_log_failures.load(std::memory_order_relaxed); }
uint64_t AuditWriteFailures(AuditRecord record) {
  return g_audit_failures[static_cast<size_t>(record)].load(std::memory_order_relaxed);
}
void CountAuditWriteFailure(AuditRecord record) {
  g_audit_failures[static_cast<size_t>(record)].fetch_add(1, std::memory_order_relaxed);
}

Status WriteFully(int fd, std::string_view bytes) {
  const char* p = bytes.data();
  size_t left = bytes.size();
  int waits = 0;
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && waits < 10) {
      // A non-blocking descriptor (a full journald stream): wait a little.
      pollfd pfd{fd, POLLOUT, 0};
      (void)::poll(&pfd, 1, 100);
      ++waits;
      continue;
    }
    if (n < 0) return Unavailable(std::string("writing the log: ") + std::strerror(errno));
    if (n == 0) return Unavailable(std::string("writing the log: ") + std::strerror(EIO));
    p += n;
    left -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

void SetLogLevel(LogLevel level) { g_level.store(level); }
LogLevel GetLogLevel() { return g_level.load(); }
void SetLogFd(int fd) { g_fd.store(fd); }

std::string LogValue(std::string_view value) {
  bool truncated = false;
  if (value.size() > LogLine::kMaxValueBytes) {
    value = value.substr(0, LogLine::kMaxValueBytes);
    truncated = true;
  }
  bool quote = value.empty();
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || u < 0x20 || u >= 0x7f) quote = true;
  }
  if (!quote && !truncated) return std::string(value);
  std::string out = "\"";
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  if (truncated) out += "...";
  out += '"';
  return out;
}

LogLine::LogLine(LogLevel level, std::string_view event) : enabled_(level >= g_level.load()) {
  if (!enabled_) return;
  line_.reserve(160);
  line_ += "ts=";
  line_ += Timestamp();
  line_ += " level=";
  line_ += LevelName(level);
  line_ += " event=";
  line_ += LogValue(event);
}

LogLine::LogLine(LogLevel level, std::string_view event, AuditRecord record) : enabled_(true), audit_(record) {
  line_.clear();
  line_ += "ts=";
  line_ += Timestamp();
  line_ += " level=";
  line_ += LevelName(level);
  line_ += " event=";
  line_ += LogValue(event);
  line_ += " audit=1";
}

LogLine::~LogLine() {
  // Nowhere to report a logging failure but the counter Emit() bumps.
  if (!emitted_) (void)Emit();
}

Status LogLine::Emit() {
  if (emitted_) return result_;
  emitted_ = true;
  if (!enabled_) return result_;
  line_ += '\n';
  result_ = WriteFully(g_fd.load(), line_);
  line_.pop_back();
  if (!result_.ok()) {
    if (audit_) {
      CountAuditWriteFailure(*audit_);
    } else {
      g_log_failures.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return result_;
}

LogLine& LogLine::Add(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  line_ += ' ';
  line_ += key;
  line_ += '=';
  line_ += LogValue(value);
  return *this;
}

LogLine& LogLine::Add(std::string_view key, int64_t value) {
  return Add(key, std::string_view(std::to_string(value)));
}

LogLine& LogLine::Add(std::string_view key, uint64_t value) {
  return Add(key, std::string_view(std::to_string(value)));
}

}  // namespace tkms
