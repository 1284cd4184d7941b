#include "firmware/tkmsd/token_monitor.h"

#include "firmware/base/log.h"

namespace tkms::tkmsd {

TokenMonitor::TokenMonitor(Probe probe, Recover recover, Publish publish, std::chrono::milliseconds interval)
    : probe_(std::move(probe)), recover_(std::move(recover)), publish_(std::move(publish)), interval_(interval) {}

TokenMonitor::~TokenMonitor() { Stop(); }

void TokenMonitor::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void TokenMonitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool TokenMonitor::healthy() const {
  std::lock_guard<std::mutex> lock(mu_);
  return healthy_;
}

void TokenMonitor::SetHealth(bool healthy, const Status& why) {
  bool changed = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    changed = healthy_ != healthy;
    healthy_ = healthy;
  }
  publish_(healthy ? Status::Ok() : Unavailable(why.message()));
  if (!changed) return;
  if (healthy) {
    LogLine(LogLevel::kInfo, "token_recovered");
  } else {
    LogLine(LogLevel::kError, "token_unavailable")
        .Add("error", why.message())
        .Add("effect", "requests get 503 and /readyz reports not ready until the token is back");
  }
}

void TokenMonitor::Report(const Status& failure) {
  SetHealth(false, failure);
  {
    std::lock_guard<std::mutex> lock(mu_);
    poked_ = true;
  }
  wake_.notify_all();
}

void TokenMonitor::CheckNow() {
  std::lock_guard<std::mutex> check(check_mu_);
  if (!healthy()) {
    // Out of service: try the way back (reconnect, re-read keys and users)
    // at every check; it probes the token itself.
    Status recovered = recover_();
    SetHealth(recovered.ok(), recovered);
    return;
  }
  Status probed = probe_();
  SetHealth(probed.ok(), probed);
}

void TokenMonitor::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, interval_, [this] { return stop_ || poked_; });
    if (stop_) break;
    poked_ = false;
    lock.unlock();
    CheckNow();
    lock.lock();
  }
}

}  // namespace tkms::tkmsd
