// keystore_bench: what the keystore costs on top of raw PKCS#11, measured in
// one run on one SoftHSM2 token (docs/keystore.md has figures).
//
//   BM_RawHmac/token_object     C_SignInit + C_Sign (CKM_SHA256_HMAC, 64 B)
//                               with the persistent token key
//   BM_RawHmac/session_object   the same with a CKA_TOKEN=FALSE copy
//   BM_KeystoreHmac             Keystore::provider().Hmac on the same key
//   BM_KeystoreHmac/threads:2   the same from two threads (per-thread time)
//   BM_RawAesCtr/...            C_EncryptInit + C_Encrypt (CKM_AES_CTR, 64 B)
//   BM_KeystoreAesCtr           provider().AesCtr, 64 bytes
//   BM_RawRandom / BM_KeystoreRandom   C_GenerateRandom, 32 bytes
//
// After the runs, main() prints the keystore overhead ratio = keystore time
// / raw session-object time for HMAC, AES-CTR and random, and the speed-up
// of session copies (token-object time / session-object time).
// Run: ./build/release/tests/keystore/keystore_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "firmware/keystore/keystore.h"
#include "pkcs11/attributes.h"
#include "pkcs11/session.h"
#include "tests/keystore/keystore_fixture.h"

namespace {

using namespace tkms::keystore;
using tkms::pkcs11::AttributeTemplate;
using tkms::pkcs11::FindObjects;
using tkms::pkcs11::kInvalidHandle;
using tkms::pkcs11::Session;
using tkms::ByteSpan;

struct Env {
  std::unique_ptr<test::SoftHsmToken> token;
  std::unique_ptr<Keystore> keystore;
  Session raw;  // a raw session on the same (logged-in) token
  CK_OBJECT_HANDLE hmac_token = kInvalidHandle, hmac_copy = kInvalidHandle;
  CK_OBJECT_HANDLE aes_token = kInvalidHandle, aes_copy = kInvalidHandle;
  tkms::mikey::crypto::SecretKeyPtr hmac_key, aes_key;
};
Env* g_env = nullptr;

CK_OBJECT_HANDLE FindOne(Session& session, const std::string& label, bool token_object) {
  AttributeTemplate tmpl;
  tmpl.Text(CKA_LABEL, label).Bool(CKA_TOKEN, token_object);
  auto found = FindObjects(session, tmpl);
  return found.ok() && found->size() == 1 ? found->front() : kInvalidHandle;
}

bool SetUp(Env& env) {
  auto token = test::SoftHsmToken::Create("tkms-bench");
  if (!token.ok()) {
    std::fprintf(stderr, "token: %s\n", token.error().ToString().c_str());
    return false;
  }
  env.token = std::move(*token);
  auto keystore = test::OpenKeystore(*env.token);
  if (!keystore.ok()) return false;
  env.keystore = std::move(*keystore);
  if (!env.keystore->GenerateKey(KeyType::kHmacSha256, KeyUsage::kUserPsk, "bench-hmac", {1}).ok() ||
      !env.keystore->GenerateKey(KeyType::kAes256, KeyUsage::kGeneric, "bench-aes", {2}).ok()) {
    return false;
  }
  auto raw = Session::Open(env.token->module(), env.keystore->token().slot_id);
  if (!raw.ok()) return false;
  env.raw = std::move(*raw);
  env.hmac_token = FindOne(env.raw, "bench-hmac", true);
  env.hmac_copy = FindOne(env.raw, "bench-hmac", false);  // the keystore's copy
  env.aes_token = FindOne(env.raw, "bench-aes", true);
  env.aes_copy = FindOne(env.raw, "bench-aes", false);
  auto hmac_key = env.keystore->FindSecretKey(KeySelector::Label("bench-hmac"));
  auto aes_key = env.keystore->FindSecretKey(KeySelector::Label("bench-aes"));
  if (!hmac_key.ok() || !aes_key.ok()) return false;
  env.hmac_key = std::move(*hmac_key);
  env.aes_key = std::move(*aes_key);
  return env.hmac_token != kInvalidHandle && env.hmac_copy != kInvalidHandle &&
         env.aes_token != kInvalidHandle && env.aes_copy != kInvalidHandle;
}

const std::array<uint8_t, 64> kData = {};

void RawHmac(benchmark::State& state, bool session_object) {
  Session& s = g_env->raw;
  const CK_OBJECT_HANDLE key = session_object ? g_env->hmac_copy : g_env->hmac_token;
  std::array<uint8_t, 32> mac{};
  std::array<uint8_t, 64> data = kData;
  for (auto _ : state) {
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    CK_ULONG len = mac.size();
    if (s.fns().C_SignInit(s.handle(), &mech, key) != CKR_OK ||
        s.fns().C_Sign(s.handle(), data.data(), data.size(), mac.data(), &len) != CKR_OK) {
      state.SkipWithError("C_Sign failed");
      break;
    }
    benchmark::DoNotOptimize(mac);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(RawHmac, token_object, false);
BENCHMARK_CAPTURE(RawHmac, session_object, true);

void BM_KeystoreHmac(benchmark::State& state) {
  std::array<uint8_t, 32> mac{};
  const ByteSpan parts[] = {ByteSpan(kData)};
  for (auto _ : state) {
    if (!g_env->keystore->provider()
             .Hmac(tkms::mikey::crypto::HashAlg::kSha256, *g_env->hmac_key, parts, mac)
             .ok()) {
      state.SkipWithError("Hmac failed");
      break;
    }
    benchmark::DoNotOptimize(mac);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KeystoreHmac);
BENCHMARK(BM_KeystoreHmac)->Threads(2)->UseRealTime();

void RawAesCtr(benchmark::State& state, bool session_object) {
  Session& s = g_env->raw;
  const CK_OBJECT_HANDLE key = session_object ? g_env->aes_copy : g_env->aes_token;
  std::array<uint8_t, 64> data = kData;
  std::array<uint8_t, 64> out{};
  for (auto _ : state) {
    CK_AES_CTR_PARAMS params{};
    params.ulCounterBits = 128;
    CK_MECHANISM mech{CKM_AES_CTR, &params, sizeof(params)};
    CK_ULONG len = out.size();
    if (s.fns().C_EncryptInit(s.handle(), &mech, key) != CKR_OK ||
        s.fns().C_Encrypt(s.handle(), data.data(), data.size(), out.data(), &len) != CKR_OK) {
      state.SkipWithError("C_Encrypt failed");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(RawAesCtr, token_object, false);
BENCHMARK_CAPTURE(RawAesCtr, session_object, true);

void BM_KeystoreAesCtr(benchmark::State& state) {
  std::array<uint8_t, 16> iv{};
  std::array<uint8_t, 64> out{};
  for (auto _ : state) {
    if (!g_env->keystore->provider().AesCtr(*g_env->aes_key, iv, kData, out).ok()) {
      state.SkipWithError("AesCtr failed");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KeystoreAesCtr);

void BM_RawRandom(benchmark::State& state) {
  Session& s = g_env->raw;
  std::array<uint8_t, 32> out{};
  for (auto _ : state) {
    if (s.fns().C_GenerateRandom(s.handle(), out.data(), out.size()) != CKR_OK) {
      state.SkipWithError("C_GenerateRandom failed");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RawRandom);

void BM_KeystoreRandom(benchmark::State& state) {
  std::array<uint8_t, 32> out{};
  for (auto _ : state) {
    if (!g_env->keystore->GenerateRandom(out).ok()) {
      state.SkipWithError("GenerateRandom failed");
      break;
    }
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_KeystoreRandom);

// Remembers each run's time per iteration, for the ratios.
class RatioReporter final : public benchmark::ConsoleReporter {
 public:
  RatioReporter()
      : ConsoleReporter(isatty(STDOUT_FILENO) != 0 ? OO_ColorTabular : OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& run : runs) {
      if (run.run_type == Run::RT_Iteration && !run.error_occurred) {
        times_[run.benchmark_name()] = run.GetAdjustedRealTime();
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
  void PrintRatios() const {
    std::printf("\nratios (same run):\n");
    Ratio("keystore overhead, HMAC-SHA256", "BM_KeystoreHmac", "RawHmac/session_object");
    Ratio("keystore overhead, AES-CTR 64 B", "BM_KeystoreAesCtr", "RawAesCtr/session_object");
    Ratio("keystore overhead, random 32 B", "BM_KeystoreRandom", "BM_RawRandom");
    Ratio("session copy speed-up, HMAC", "RawHmac/token_object", "RawHmac/session_object");
    Ratio("session copy speed-up, AES-CTR", "RawAesCtr/token_object", "RawAesCtr/session_object");
  }

 private:
  void Ratio(const char* what, const std::string& a, const std::string& b) const {
    auto ia = times_.find(a);
    auto ib = times_.find(b);
    if (ia == times_.end() || ib == times_.end() || ib->second <= 0) return;
    std::printf("  %-34s %5.2f  (%s / %s)\n", what, ia->second / ib->second, a.c_str(), b.c_str());
  }
  std::map<std::string, double> times_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  int rc = 0;
  {
    Env env;
    if (!SetUp(env)) {
      std::fprintf(stderr, "keystore_bench: setting up the SoftHSM2 token failed\n");
      return 1;
    }
    g_env = &env;
    RatioReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    reporter.PrintRatios();
    g_env = nullptr;
    // Env members go in reverse order: raw session, keystore, token.
    env.hmac_key.reset();
    env.aes_key.reset();
    env.raw.Close();
    env.keystore.reset();
  }
  return rc;
}
