#include "provisioning/bundle_applier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/base/file_reader.h"
#include "firmware/base/log.h"
#include "firmware/base/secret_bytes.h"
#include "provisioning/bundle.h"

namespace tkms::provisioning {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

Status WriteAllFd(int fd, std::string_view bytes, const std::string& what) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Unavailable(Errno("writing " + what));
    if (w == 0) return Unavailable("writing " + what + ": " + std::strerror(EIO));
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

// The bundle file, at most kMaxBundleBytes.
Result<std::string> ReadBundleFile(const std::string& path) {
  return ReadRegularFile(path, kMaxBundleBytes, "bundle file");
}

std::string UtcText(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The fields the answer and the audit line share.
nlohmann::json OutcomeFields(const BundleOutcome& out) {
  return {{"verdict", BundleVerdictName(out.verdict)},
          {"version", out.version ? nlohmann::json(*out.version) : nlohmann::json(nullptr)},
          {"previous_version", out.previous_version},
          {"version_in_force", out.version_in_force()},
          {"digest", out.digest_hex}};
}

}  // namespace

std::string BundleAnswerJson(const BundleOutcome& outcome) {
  nlohmann::json body = OutcomeFields(outcome);
  if (!outcome.accepted()) body["reason"] = outcome.status.message();
  // Texts from a refused bundle may be anything: never let them break the line.
  return body.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string_view BundleSourceName(BundleSource source) {
  switch (source) {
    case BundleSource::kStartup: return "startup";
    case BundleSource::kSighup: return "sighup";
    case BundleSource::kAdmin: return "admin";
  }
  return "unknown";
}

std::string_view BundleVerdictName(BundleVerdict verdict) {
  switch (verdict) {
    case BundleVerdict::kAccepted: return "accepted";
    case BundleVerdict::kUnchanged: return "unchanged";
    case BundleVerdict::kRefused: return "refused";
  }
  return "unknown";
}

Status ReplaceFileAtomically(const std::string& path, std::string_view bytes) {
  const std::filesystem::path target(path);
  std::filesystem::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return Unavailable(Errno("creating " + tmp));
  Status st = WriteAllFd(fd, bytes, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Unavailable(Errno("fsync " + tmp));
  if (::close(fd) != 0 && st.ok()) st = Unavailable(Errno("closing " + tmp));
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) st = Unavailable(Errno("renaming " + tmp + " to " + path));
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::Ok();
}

Result<std::unique_ptr<BundleApplier>> BundleApplier::Create(Options options, hal::MonotonicCounter& counter,
                                                             const hal::Clock& clock, Prepare prepare) {
  if (options.bundle_path.empty()) return InvalidArgument("no bundle path");
  if (options.audit_log_path.empty()) return InvalidArgument("no audit log path");
  if (options.anchor_der.empty()) return InvalidArgument("no provisioning anchor");
  if (!prepare) return InvalidArgument("no prepare function");
  const int fd = ::open(options.audit_log_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) return Unavailable(Errno("opening the bundle audit log " + options.audit_log_path));
  return std::unique_ptr<BundleApplier>(new BundleApplier(std::move(options), counter, clock, std::move(prepare), fd));
}

BundleApplier::BundleApplier(Options options, hal::MonotonicCounter& counter, const hal::Clock& clock,
                             Prepare prepare, int audit_fd)
    : options_(std::move(options)), counter_(counter), clock_(clock), prepare_(std::move(prepare)), audit_fd_(audit_fd) {}

BundleApplier::~BundleApplier() {
  if (audit_fd_ >= 0) ::close(audit_fd_);
}

BundleOutcome BundleApplier::ApplyFile(BundleSource source) {
  std::lock_guard<std::mutex> lock(mu_);
  auto text = ReadBundleFile(options_.bundle_path);
  if (!text.ok()) {
    BundleOutcome out;
    out.status = text.error();
    out.previous_version = VersionInForce();
    Audit(out, source);
    return out;
  }
  return Decide(*text, source, nullptr);
}

uint64_t BundleApplier::VersionInForce() {
  auto counter = counter_.Read();
  return counter.ok() ? counter->value : current_version_.load();
}

BundleOutcome BundleApplier::ApplyPosted(std::string_view bundle_text, const PostedBy& posted_by) {
  std::lock_guard<std::mutex> lock(mu_);
  return Decide(bundle_text, BundleSource::kAdmin, &posted_by);
}

BundleOutcome BundleApplier::Decide(std::string_view text, BundleSource source, const PostedBy* posted_by) {
  BundleOutcome out;
  const auto finish = [&](Status status) {
    out.status = std::move(status);
    if (!out.status.ok()) out.verdict = BundleVerdict::kRefused;
    Audit(out, source, posted_by);
    return out;
  };
  out.digest_hex = HexEncode(BundleFileDigest(text));
  const std::time_t now = std::chrono::system_clock::to_time_t(clock_.Now());
  auto verified = VerifyBundle(text, options_.anchor_der, now);
  if (!verified.ok()) {
    out.previous_version = VersionInForce();
    return finish(verified.error());
  }
  out.version = verified->version;
  out.signer = verified->signer.subject;

  auto counter = counter_.Read();
  if (!counter.ok()) {
    out.previous_version = current_version_.load();
    return finish(Status(counter.error().code(), "bundle counter: " + counter.error().message()));
  }
  out.previous_version = counter->value;
  const bool same_as_counter = verified->version == counter->value &&
                               ConstantTimeEquals(verified->file_digest, counter->tag);
  if (same_as_counter && source != BundleSource::kAdmin && current_version_.load() == counter->value) {
    // The bundle in force, read again (SIGHUP without a new file).
    out.verdict = BundleVerdict::kUnchanged;
    return finish(Status::Ok());
  }
  if (verified->version < counter->value || (verified->version == counter->value && !same_as_counter) ||
      (same_as_counter && source == BundleSource::kAdmin)) {
    return finish(FailedPrecondition("version " + std::to_string(verified->version) +
                                     " is not newer than the accepted version " + std::to_string(counter->value)));
  }

  auto commit = prepare_(verified->config);
  if (!commit.ok()) return finish(Status(commit.error().code(), "applying the bundle: " + commit.error().message()));
  std::optional<std::string> previous_file;
  if (source == BundleSource::kAdmin) {
    auto previous = ReadBundleFile(options_.bundle_path);
    if (previous.ok()) previous_file = std::move(*previous);
    if (Status st = ReplaceFileAtomically(options_.bundle_path, text); !st.ok()) {
      return finish(Status(st.code(), "saving the bundle: " + st.message()));
    }
  }
  // The record comes before anything that cannot be undone (issue 14,
  // fail closed): a bundle whose audit record cannot be written is refused
  // and the saved file is put back.
  const auto restore_file = [&] {
    if (previous_file) (void)ReplaceFileAtomically(options_.bundle_path, *previous_file);
    if (source == BundleSource::kAdmin && !previous_file) ::unlink(options_.bundle_path.c_str());
  };
  out.verdict = BundleVerdict::kAccepted;
  out.status = Status::Ok();
  if (Status st = WriteAudit(out, source, posted_by); !st.ok()) {
    restore_file();
    return finish(Status(StatusCode::kUnavailable, "audit log: " + st.message()));
  }
  if (!same_as_counter) {
    if (Status st = counter_.Advance(verified->version, verified->file_digest); !st.ok()) {
      // Put the previous file back, so that a restart does not apply what
      // was just refused. The refusal's record follows the "accepted" one
      // just written and supersedes it (docs/bundles.md).
      // The token could not store the new version (for SoftHSM2: its object
      // files could not be written, CKR_GENERAL_ERROR): unavailable, not a
      // verdict on the bundle, so 503 and the same bundle may come again.
      restore_file();
      const StatusCode code = st.code() == StatusCode::kFailedPrecondition ? st.code() : StatusCode::kUnavailable;
      return finish(Status(code, "bundle counter: " + st.message()));
    }
  }
  // At start the bundle in force (same_as_counter) is accepted again: the
  // counter stays, the configuration becomes the running one.
  (*commit)();
  current_version_.store(verified->version);
  Report(out, source, posted_by, Status::Ok());
  return out;
}

Status BundleApplier::WriteAudit(const BundleOutcome& out, BundleSource source, const PostedBy* posted_by) {
  nlohmann::json record = OutcomeFields(out);
  record["time"] = UtcText(clock_.Now());
  record["source"] = BundleSourceName(source);
  record["signer"] = out.signer;
  record["reason"] = out.status.ok() ? std::string() : out.status.message();
  if (posted_by != nullptr) {
    record["peer"] = posted_by->address;
    record["operator_certificate"] = posted_by->certificate_subject;
    record["operator_certificate_sha256"] = posted_by->certificate_sha256;
  }
  // Texts from a refused bundle may be anything: never let them break the line.
  const std::string line = record.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace) + "\n";
  struct stat before {};
  const bool sized = ::fstat(audit_fd_, &before) == 0;
  Status st = WriteAllFd(audit_fd_, line, "the bundle audit log");
  if (st.ok() && ::fsync(audit_fd_) != 0) st = Unavailable(Errno("fsync of the bundle audit log"));
  if (!st.ok()) {
    // A partial record must not glue itself to the next one: cut it off
    // (best effort; on a read-only file system this fails as well).
    if (sized) (void)::ftruncate(audit_fd_, before.st_size);
    CountAuditWriteFailure(AuditRecord::kBundle);
  }
  return st;
}

void BundleApplier::Audit(const BundleOutcome& out, BundleSource source, const PostedBy* posted_by) {
  Report(out, source, posted_by, WriteAudit(out, source, posted_by));
}

void BundleApplier::Report(const BundleOutcome& out, BundleSource source, const PostedBy* posted_by,
                           const Status& audit_written) {
  // "unchanged" (a SIGHUP re-reading the bundle in force) counts as neither.
  if (out.verdict == BundleVerdict::kAccepted) accepted_.fetch_add(1, std::memory_order_relaxed);
  if (out.verdict == BundleVerdict::kRefused) refused_.fetch_add(1, std::memory_order_relaxed);
  LogLine(out.accepted() ? LogLevel::kInfo : LogLevel::kWarn, out.accepted() ? "bundle_accepted" : "bundle_refused")
      .Add("source", BundleSourceName(source))
      .Add("verdict", BundleVerdictName(out.verdict))
      .Add("version", out.version ? std::to_string(*out.version) : std::string("-"))
      .Add("previous_version", out.previous_version)
      .Add("version_in_force", out.version_in_force())
      .Add("digest", out.digest_hex)
      .Add("signer", out.signer)
      .Add("operator", posted_by != nullptr && !posted_by->certificate_subject.empty()
                           ? posted_by->certificate_subject
                           : std::string("-"))
      .Add("reason", out.status.ok() ? std::string("-") : out.status.message());
  if (!audit_written.ok()) LogLine(LogLevel::kError, "bundle_audit_failed").Add("error", audit_written.message());
}

}  // namespace tkms::provisioning
