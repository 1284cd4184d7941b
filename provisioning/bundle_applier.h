// BundleApplier: accepts or refuses signed configuration bundles for a
// running tkmsd, keeps the version counter, the bundle file and the audit log
// consistent, and hands an accepted configuration over to be swapped in.
//
// Why (issue 6, docs/bundles.md): nothing reaches a running appliance's
// configuration unless the provisioning authority signed it, versions only go
// up, a refused bundle changes nothing, and every decision leaves a trace.
// One place decides, for all three ways a bundle arrives: the file at start
// (tkmsd --bundle), the same file again on SIGHUP, and POST /admin/bundle.
//
// The decision, in order (the first failure refuses and changes nothing):
//   1. VerifyBundle (bundle.h): envelope, certificate chain to the pinned
//      anchor at the clock's time, key usage, ECDSA signature, schema and
//      references of the payload, certificate dates.
//   2. Version against the counter (hal::MonotonicCounter, in the token in
//      production): greater is new; equal with the same file digest as the
//      counter's tag is the bundle already in force ("unchanged": the normal
//      case at start and on a SIGHUP without a new file); anything else is
//      refused ("version 4 is not newer than the accepted version 5").
//   3. prepare(config): the caller builds everything the new configuration
//      needs (for tkmsd: the user directory and the KMS snapshot) without
//      making it visible. A failure refuses the bundle.
//   4. For a posted bundle: the bundle file is replaced atomically (temporary
//      file, fsync, rename, fsync of the directory), so a restart finds it.
//   5. The audit record ("accepted") is written and fsync'd; if it cannot be
//      (full disk, read-only file system, I/O error, short write), the
//      bundle is refused (kUnavailable) and the saved file is put back:
//      nothing is done that the log does not record (issue 14, fail closed).
//   6. The counter advances to the new version (tag = file digest); if it
//      cannot, the file is put back and the refusal's record follows the
//      "accepted" one for the same digest (the last record for a digest is
//      the verdict).
//   7. commit() swaps the prepared state in.
// Requests in flight keep the snapshot they started with (the caller's swap
// is atomic). Applies are serialised by one mutex.
//
// The audit log is JSON lines, appended with one write(2) and fsync'd:
//   {"time":"2026-12-01T23:05:00Z","source":"admin","verdict":"accepted",
//    "version":7,"previous_version":6,"version_in_force":7,
//    "digest":"<sha256 of the bundle file>","signer":"CN=...","reason":""}
// Every decision, refusals included, names the version in force: a bundle
// refused while version 6 is in force says "previous_version":6 and
// "version_in_force":6, and "version" is the refused bundle's own version,
// or null if it was refused before its version could be trusted. It never
// contains a secret (bundles hold none).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/status.h"
#include "hal/clock.h"
#include "hal/monotonic_counter.h"
#include "provisioning/config.h"

namespace tkms::provisioning {

enum class BundleSource : uint8_t { kStartup, kSighup, kAdmin };
std::string_view BundleSourceName(BundleSource source);  // "startup", "sighup", "admin"

enum class BundleVerdict : uint8_t { kAccepted, kUnchanged, kRefused };
std::string_view BundleVerdictName(BundleVerdict verdict);  // "accepted", "unchanged", "refused"

struct BundleOutcome {
  BundleVerdict verdict = BundleVerdict::kRefused;
  // Why it was refused: kPermissionDenied (signature, certificates),
  // kInvalidArgument (envelope, schema), kFailedPrecondition (version not
  // newer), kNotFound (no bundle file), kUnavailable / kInternal (token,
  // file system; kUnavailable whenever the audit record could not be
  // written or the counter could not be advanced, docs/reliability.md
  // "Disk faults"). Ok when accepted or unchanged.
  Status status;
  // The bundle's own version: known once the bundle verified (read from a
  // payload its authority signed), absent when it was refused before that
  // (no file, envelope, certificates, signature, schema). Never a version
  // an unverified bundle merely claims.
  std::optional<uint64_t> version;
  // The version in force when the bundle arrived: the version counter's
  // value (0 before any bundle was accepted). If the counter cannot be read,
  // the version this process runs.
  uint64_t previous_version = 0;
  std::string signer;      // subject of the signer's certificate, once verified
  std::string digest_hex;  // SHA-256 of the bundle file (empty if there was no file)
  bool accepted() const { return verdict != BundleVerdict::kRefused; }
  // The version in force after the decision: the bundle's if it was
  // accepted (or unchanged), otherwise previous_version.
  uint64_t version_in_force() const { return accepted() && version ? *version : previous_version; }
};

// The answer to POST /admin/bundle (one JSON line, keys sorted):
//   {"digest":"...","previous_version":6,"verdict":"refused","version":null,
//    "version_in_force":6,"reason":"signature: does not verify ..."}
// "reason" only for refusals; "version" null as BundleOutcome::version.
std::string BundleAnswerJson(const BundleOutcome& outcome);

class BundleApplier {
 public:
  // prepare(config) readies `config` (the bundle's provisioned sections; the
  // caller combines it with its local settings) and returns the function that
  // makes it live. It must not change anything visible itself.
  using Commit = std::function<void()>;
  using Prepare = std::function<Result<Commit>(const KmsConfig& bundle_config)>;

  struct Options {
    std::string bundle_path;     // read at start and on SIGHUP; replaced by posts
    std::string audit_log_path;  // opened for append at Create
    std::vector<uint8_t> anchor_der;
  };

  // Opens (creates, mode 0640) the audit log. kInvalidArgument for empty
  // paths or anchor; the file error otherwise.
  static Result<std::unique_ptr<BundleApplier>> Create(Options options, hal::MonotonicCounter& counter,
                                                       const hal::Clock& clock, Prepare prepare);
  ~BundleApplier();
  BundleApplier(const BundleApplier&) = delete;
  BundleApplier& operator=(const BundleApplier&) = delete;

  // Reads options.bundle_path and decides (kStartup or kSighup).
  BundleOutcome ApplyFile(BundleSource source);
  // Who posted a bundle to the admin listener, as the listener knows it:
  // the socket's address and, on a mutual-TLS admin listener, the
  // operator's verified client certificate. Written to the audit record.
  struct PostedBy {
    std::string address;              // "ip:port"
    std::string certificate_subject;  // "" on a plaintext (loopback) admin listener
    std::string certificate_sha256;   // lowercase hex, "" likewise
  };
  // A bundle posted to the admin listener (bytes as received).
  BundleOutcome ApplyPosted(std::string_view bundle_text, const PostedBy& posted_by = {});

  // Counters for /metrics (kAccepted and kRefused decisions; kUnchanged
  // counts as neither), and the version in force (0 before the first).
  uint64_t accepted_count() const { return accepted_.load(std::memory_order_relaxed); }
  uint64_t refused_count() const { return refused_.load(std::memory_order_relaxed); }
  uint64_t current_version() const { return current_version_.load(std::memory_order_relaxed); }

 private:
  BundleApplier(Options options, hal::MonotonicCounter& counter, const hal::Clock& clock, Prepare prepare, int audit_fd);
  BundleOutcome Decide(std::string_view bundle_text, BundleSource source, const PostedBy* posted_by);
  // The counter's value, or the version this process runs if the counter
  // cannot be read: what a refusal reports as previous_version.
  uint64_t VersionInForce();
  // Writes the audit record and reports the decision (metrics, log line).
  void Audit(const BundleOutcome& outcome, BundleSource source, const PostedBy* posted_by = nullptr);
  // Appends and fsyncs one record; a failed (or partial) record is cut off
  // again and counted (tkms_audit_write_failures_total{record="bundle"}).
  Status WriteAudit(const BundleOutcome& outcome, BundleSource source, const PostedBy* posted_by);
  // The metrics and the log line of a decision whose record was written (or not).
  void Report(const BundleOutcome& outcome, BundleSource source, const PostedBy* posted_by,
              const Status& audit_written);

  Options options_;
  hal::MonotonicCounter& counter_;
  const hal::Clock& clock_;
  Prepare prepare_;
  int audit_fd_ = -1;
  std::mutex mu_;  // one decision at a time
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> refused_{0};
  std::atomic<uint64_t> current_version_{0};
};

// Replaces `path` with `bytes` atomically: PATH.tmp.<pid> in the same
// directory (mode 0640), write, fsync, rename over PATH, fsync the directory.
Status ReplaceFileAtomically(const std::string& path, std::string_view bytes);

}  // namespace tkms::provisioning
