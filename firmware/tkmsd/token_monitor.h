// TokenMonitor: watches the token and says whether the KMS may use it.
//
// Why: a token that can no longer be read (an HSM pulled or failing, a
// SoftHSM2 token directory that disappeared) must not leave the KMS
// answering as if nothing happened: requests get 503 and /readyz says not
// ready (so a load balancer sends the traffic elsewhere), and the KMS
// recovers by itself when the token is back, without a restart. A token
// failure on the request path makes the KMS unhealthy at once (Report);
// a thread probes the token every `interval` (a real token read, not the
// host-side catalogue) while it is healthy; while it is not, it runs
// `recover` every `interval` instead (reconnect to the module, which some
// modules need before they see a returned token again, probe, and re-read
// the token's keys and users) and declares the token healthy when that
// succeeds. The verdict goes to `publish` (KeystoreKeys::ReportHealth).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "firmware/base/status.h"

namespace tkms::tkmsd {

class TokenMonitor {
 public:
  using Probe = std::function<Status()>;
  using Recover = std::function<Status()>;
  using Publish = std::function<void(const Status&)>;

  TokenMonitor(Probe probe, Recover recover, Publish publish, std::chrono::milliseconds interval);
  ~TokenMonitor();
  TokenMonitor(const TokenMonitor&) = delete;
  TokenMonitor& operator=(const TokenMonitor&) = delete;

  void Start();
  void Stop();  // idempotent; also in the destructor
  // A token failure seen elsewhere: unhealthy now, probed at once.
  void Report(const Status& failure);
  // One probe (and recovery) now, on the caller's thread.
  void CheckNow();
  bool healthy() const;

 private:
  void Run();
  void SetHealth(bool healthy, const Status& why);

  Probe probe_;
  Recover recover_;
  Publish publish_;
  const std::chrono::milliseconds interval_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  bool poked_ = false;
  bool healthy_ = true;
  std::mutex check_mu_;  // one probe at a time
  std::thread thread_;
};

}  // namespace tkms::tkmsd
