// LogLine's write result (firmware/base/log.h; issue 14, docs/reliability.md
// "Disk faults"): Emit() says whether the whole line reached the log
// descriptor; ordinary lines that fail are counted, audit lines that fail are
// counted per record kind and are always written whatever the level.
#include "firmware/base/log.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace tkms {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);  // as tkmsd: a closed pipe is EPIPE, not death
    ASSERT_EQ(::pipe(fds_), 0);
    SetLogFd(fds_[1]);
  }
  void TearDown() override {
    SetLogFd(2);
    SetLogLevel(LogLevel::kInfo);
    if (fds_[0] >= 0) ::close(fds_[0]);
    ::close(fds_[1]);
  }
  std::string Drain() {
    std::string out;
    char buf[4096];
    const int flags = ::fcntl(fds_[0], F_GETFL);
    ::fcntl(fds_[0], F_SETFL, flags | O_NONBLOCK);
    for (ssize_t n; (n = ::read(fds_[0], buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
    return out;
  }
  int fds_[2] = {-1, -1};
};

TEST_F(LogTest, EmitWritesOnceAndReportsOk) {
  const uint64_t failures = LogWriteFailures();
  {
    LogLine line(LogLevel::kInfo, "hello");
    line.Add("k", "v w");
    ASSERT_TRUE(line.Emit().ok());
    EXPECT_TRUE(line.Emit().ok());  // the first result again, nothing written twice
  }                                 // the destructor writes nothing more
  const std::string text = Drain();
  EXPECT_NE(text.find("event=hello k=\"v w\"\n"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), text.size() - 1) << text;
  EXPECT_EQ(LogWriteFailures(), failures);
}

TEST_F(LogTest, ClosedReadEndIsReportedAndCounted) {
  ::close(fds_[0]);
  fds_[0] = -1;
  const uint64_t failures = LogWriteFailures();
  const uint64_t audit_failures = AuditWriteFailures(AuditRecord::kZkRequest);
  LogLine line(LogLevel::kWarn, "lost");
  Status st = line.Emit();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("Broken pipe"), std::string::npos) << st.message();
  EXPECT_EQ(LogWriteFailures(), failures + 1);
  { LogLine(LogLevel::kInfo, "lost_too"); }  // the destructor's write: counted, no throw, no crash
  EXPECT_EQ(LogWriteFailures(), failures + 2);
  LogLine audit(LogLevel::kInfo, "zk_request", AuditRecord::kZkRequest);
  EXPECT_FALSE(audit.Emit().ok());
  EXPECT_EQ(AuditWriteFailures(AuditRecord::kZkRequest), audit_failures + 1);
  EXPECT_EQ(LogWriteFailures(), failures + 2);  // audit lines are counted apart
}

TEST_F(LogTest, DevFullIsNoSpaceLeft) {
  const int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
  ASSERT_GE(full, 0);
  SetLogFd(full);
  const uint64_t audit_failures = AuditWriteFailures(AuditRecord::kBundle);
  LogLine line(LogLevel::kError, "x", AuditRecord::kBundle);
  Status st = line.Emit();
  EXPECT_NE(st.message().find("No space left on device"), std::string::npos) << st.message();
  EXPECT_EQ(AuditWriteFailures(AuditRecord::kBundle), audit_failures + 1);
  EXPECT_FALSE(WriteFully(full, "abc").ok());
  ::close(full);
}

TEST_F(LogTest, AuditLinesIgnoreTheLevel) {
  SetLogLevel(LogLevel::kError);
  {
    LogLine dropped(LogLevel::kInfo, "ordinary");
    EXPECT_TRUE(dropped.Emit().ok());  // not enabled: nothing to write, nothing failed
  }
  LogLine audit(LogLevel::kInfo, "zk_request", AuditRecord::kZkRequest);
  audit.Add("client", "nf-1");
  ASSERT_TRUE(audit.Emit().ok());
  const std::string text = Drain();
  EXPECT_EQ(text.find("ordinary"), std::string::npos) << text;
  EXPECT_NE(text.find("level=info event=zk_request audit=1 client=nf-1\n"), std::string::npos) << text;
}

TEST_F(LogTest, LongLinesArriveWholeThroughAPipe) {
  // More than a pipe's buffer: the writer must continue partial writes
  // while the reader drains (a thread reads).
  std::string big(100 * 1024, 'a');
  std::string got;
  ::fcntl(fds_[1], F_SETPIPE_SZ, 4096);
  std::thread reader([&] {
    char buf[8192];
    for (ssize_t n; (n = ::read(fds_[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  });
  EXPECT_TRUE(WriteFully(fds_[1], big).ok());
  ::close(fds_[1]);
  fds_[1] = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  reader.join();
  EXPECT_EQ(got, big);
}

TEST(LogRecordNames, Names) {
  EXPECT_EQ(AuditRecordName(AuditRecord::kZkRequest), "zk_request");
  EXPECT_EQ(AuditRecordName(AuditRecord::kBundle), "bundle");
}

}  // namespace
}  // namespace tkms
