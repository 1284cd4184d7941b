// token_mix_ceiling: the raw PKCS#11 ceiling of `make bench` (docs/benchmarks.md).
//
// How many Ticket Requests / Resolves per second the token could serve if it
// did nothing but the token operations one request needs
// (tests/kms/token_op_mix.h: 14 HMAC-SHA-256 + 4 C_GenerateRandom per request,
// 14 HMACs per resolve), issued as raw C_SignInit + C_Sign / C_GenerateRandom
// calls on session-object keys (as the keystore uses them), from 1 and from 2
// threads, each with its own session. The best aggregate rate is the ceiling.
// Prints one JSON object.
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "firmware/keystore/keystore.h"
#include "pkcs11/attributes.h"
#include "pkcs11/session.h"
#include "tests/keystore/keystore_fixture.h"
#include "tests/kms/token_op_mix.h"

namespace {

using namespace tkms::keystore;
using tkms::pkcs11::AttributeTemplate;
using tkms::pkcs11::FindObjects;
using tkms::pkcs11::kInvalidHandle;
using tkms::pkcs11::Module;
using tkms::pkcs11::Session;
using Clock = std::chrono::steady_clock;

struct Rates {
  double hmac_per_s = 0;
  double random_per_s = 0;
};

// ops per second of `op` over `threads` threads, each with its own session.
template <typename Op>
double Measure(const std::shared_ptr<Module>& module, CK_SLOT_ID slot, int threads, double seconds, Op op) {
  std::vector<std::thread> workers;
  std::vector<long> counts(static_cast<size_t>(threads), 0);
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto session = Session::Open(module, slot);
      if (!session.ok()) return;
      long n = 0;
      while (Clock::now() < end) {
        for (int i = 0; i < 64; ++i) {
          if (!op(*session)) return;
          ++n;
        }
      }
      counts[static_cast<size_t>(t)] = n;
    });
  }
  for (auto& w : workers) w.join();
  long total = 0;
  for (long c : counts) total += c;
  return static_cast<double>(total) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  auto token = test::SoftHsmToken::Create("tkms-ceiling");
  if (!token.ok()) {
    std::fprintf(stderr, "token: %s\n", token.error().ToString().c_str());
    return 1;
  }
  auto keystore = test::OpenKeystore(**token);
  if (!keystore.ok() || !(*keystore)->GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "ceiling-hmac", {1}).ok()) {
    std::fprintf(stderr, "keystore setup failed\n");
    return 1;
  }
  const auto module = (*token)->module();
  const CK_SLOT_ID slot = (*keystore)->token().slot_id;
  CK_OBJECT_HANDLE key = kInvalidHandle;
  {
    auto s = Session::Open(module, slot);
    AttributeTemplate tmpl;
    tmpl.Text(CKA_LABEL, "ceiling-hmac").Bool(CKA_TOKEN, false);  // the keystore's session copy
    auto found = FindObjects(*s, tmpl);
    if (!found.ok() || found->size() != 1) {
      std::fprintf(stderr, "session copy not found\n");
      return 1;
    }
    key = found->front();
  }
  // The PRF's HMAC inputs are short labels (< 64 bytes).
  const auto hmac = [key](Session& s) {
    uint8_t data[48] = {};
    uint8_t mac[32];
    CK_ULONG len = sizeof mac;
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    return s.fns().C_SignInit(s.handle(), &mech, key) == CKR_OK &&
           s.fns().C_Sign(s.handle(), data, sizeof data, mac, &len) == CKR_OK;
  };
  const auto random = [](Session& s) {
    uint8_t out[32];
    return s.fns().C_GenerateRandom(s.handle(), out, sizeof out) == CKR_OK;
  };
  Rates best;
  int best_threads = 1;
  for (int threads : {1, 2}) {
    Rates r{Measure(module, slot, threads, seconds / 2, hmac), Measure(module, slot, threads, seconds / 4, random)};
    if (r.hmac_per_s > best.hmac_per_s) {
      best = r;
      best_threads = threads;
    }
  }
  const auto ceiling = [&](const tkms::kms::TokenOpMix& mix) {
    const double per_request_s = mix.token_hmacs / best.hmac_per_s + mix.token_randoms / best.random_per_s;
    return 1.0 / per_request_s;
  };
  std::printf(
      "{\"hmac_per_s\": %.0f, \"random_per_s\": %.0f, \"threads\": %d, \"request_hmacs\": %d, "
      "\"request_randoms\": %d, \"resolve_hmacs\": %d, \"request_ceiling_per_s\": %.0f, "
      "\"resolve_ceiling_per_s\": %.0f}\n",
      best.hmac_per_s, best.random_per_s, best_threads, tkms::kms::kTicketRequestMix.token_hmacs,
      tkms::kms::kTicketRequestMix.token_randoms, tkms::kms::kTicketResolveMix.token_hmacs,
      ceiling(tkms::kms::kTicketRequestMix), ceiling(tkms::kms::kTicketResolveMix));
  return 0;
}
