// FakeKmsService: a kms::KmsService for the web/ tests with a configurable
// reply, a record of every call, an optional gate that holds calls until the
// test opens it, and an optional exception.
//
// Why: the front end's contract (TS 33.328 Annex A status mapping, metrics,
// the busy-worker and shutdown behaviour) must be tested without MIKEY or a
// token: the fake shows exactly which bytes and request type the front end
// handed over and lets a test choose every KmsReply.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "firmware/kms/service.h"

namespace tkms::web::testing {

class FakeKmsService : public kms::KmsService {
 public:
  struct Call {
    kms::RequestContext context;
    std::vector<uint8_t> mikey;
  };

  FakeKmsService() {
    reply_.outcome = kms::Outcome::kOk;
    reply_.mikey = {0x01, 0x0a, 0x00, 0x42};
    readiness_.token_ready = readiness_.config_loaded = readiness_.keys_present = true;
    readiness_.detail = "ok";
  }

  kms::KmsReply Handle(const kms::RequestContext& context, ByteSpan mikey) override {
    std::unique_lock<std::mutex> lock(mu_);
    calls_.push_back(Call{context, std::vector<uint8_t>(mikey.begin(), mikey.end())});
    cv_.notify_all();
    cv_.wait(lock, [this] { return gate_open_; });
    if (throw_) throw std::runtime_error("fake service failure");
    return reply_;
  }

  kms::Readiness CheckReadiness() override {
    std::lock_guard<std::mutex> lock(mu_);
    return readiness_;
  }

  void SetReply(kms::KmsReply reply) {
    std::lock_guard<std::mutex> lock(mu_);
    reply_ = std::move(reply);
  }
  void SetThrow(bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    throw_ = on;
  }
  void SetReadiness(kms::Readiness readiness) {
    std::lock_guard<std::mutex> lock(mu_);
    readiness_ = std::move(readiness);
  }
  // While closed, Handle() blocks after recording its call.
  void CloseGate() {
    std::lock_guard<std::mutex> lock(mu_);
    gate_open_ = false;
  }
  void OpenGate() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      gate_open_ = true;
    }
    cv_.notify_all();
  }
  // Waits until at least n calls were recorded.
  bool WaitForCalls(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return calls_.size() >= n; });
  }
  std::vector<Call> calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Call> calls_;
  kms::KmsReply reply_;
  kms::Readiness readiness_;
  bool gate_open_ = true;
  bool throw_ = false;
};

}  // namespace tkms::web::testing
