// The fault-injection module (fault_pkcs11.cpp) in front of SoftHSM2: a
// Keystore opened through it works normally, fails with the "retry later"
// code (kUnavailable -> HTTP 503) while the trigger file exists, and works
// again on the same Keystore once the file is gone. A real module that
// cannot be loaded gives a clean Module::Load error.
//
// Cryptoki is initialised once per process and the shim reads its
// environment once, so this binary points the fixture (TKMS_PKCS11_MODULE)
// at the shim and sets TKMS_FAULT_TRIGGER before any test loads it; the
// token, its Module and the Keystore all go through the shim. Cases that
// need another TKMS_FAULT_REAL_MODULE run in re-executed child processes
// (death tests, "threadsafe" style) in which the shim was never loaded.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "firmware/keystore/keystore.h"
#include "pkcs11/ck_status.h"
#include "pkcs11/module.h"
#include "tests/keystore/keystore_fixture.h"
#include "tests/pkcs11/softhsm_fixture.h"

#ifndef TKMS_FAULT_MODULE
#error "TKMS_FAULT_MODULE (path of libtkms_fault_pkcs11.so) must be defined by the build"
#endif

namespace tkms::keystore {
namespace {

using mikey::crypto::HashAlg;
using mikey::crypto::SecretKeyPtr;
using pkcs11::IsRetryable;
using pkcs11::Module;
using pkcs11::ModuleInfo;
using test::KeystoreOptionsFor;
using test::OpenKeystore;
using test::SoftHsmToken;

// The process-wide shim environment: a private directory holding the trigger
// file, TKMS_FAULT_TRIGGER naming it, and the fixture loading the shim
// (forwarding to whatever TKMS_PKCS11_MODULE named, SoftHSM2 by default).
// Set up before the first test loads the shim; removed at exit.
class ShimEnvironment {
 public:
  static const ShimEnvironment& Get() {
    static const ShimEnvironment env;
    return env;
  }
  const std::string& trigger() const { return trigger_; }

  ~ShimEnvironment() {
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }
  ShimEnvironment(const ShimEnvironment&) = delete;
  ShimEnvironment& operator=(const ShimEnvironment&) = delete;

 private:
  ShimEnvironment() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && tmp[0] != '\0' ? tmp : "/tmp") + "/tkms-fault-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    dir_ = pattern;
    trigger_ = dir_ + "/trigger";
    setenv("TKMS_FAULT_TRIGGER", trigger_.c_str(), 1);
    // A module chosen for the pkcs11 suites becomes the shim's real module.
    const char* chosen = std::getenv("TKMS_PKCS11_MODULE");
    if (chosen != nullptr && chosen[0] != '\0') setenv("TKMS_FAULT_REAL_MODULE", chosen, 0);
    setenv("TKMS_PKCS11_MODULE", TKMS_FAULT_MODULE, 1);
  }

  std::string dir_;
  std::string trigger_;
};

class fault_pkcs11_Shim : public ::testing::Test {
 protected:
  void SetUp() override {
    ClearFault();
    auto token = SoftHsmToken::Create();
    ASSERT_TRUE(token.ok()) << token.error().ToString();
    token_ = std::move(*token);
    ASSERT_EQ(token_->module()->path(), std::string(TKMS_FAULT_MODULE));
    // The options' module_path is the shim; the fixture already loaded it
    // (one Module per library per process), so the Keystore shares that Module.
    ASSERT_EQ(KeystoreOptionsFor(*token_).module_path, std::string(TKMS_FAULT_MODULE));
    auto keystore = OpenKeystore(*token_);
    ASSERT_TRUE(keystore.ok()) << keystore.error().ToString();
    keystore_ = std::move(*keystore);
  }

  void TearDown() override {
    ClearFault();
    keystore_.reset();
    token_.reset();
  }

  Keystore& ks() { return *keystore_; }

  static const std::string& Trigger() { return ShimEnvironment::Get().trigger(); }

  // Creates (or rewrites) the trigger file with `content`.
  static void SetFault(const std::string& content = "") {
    std::ofstream out(Trigger(), std::ios::trunc);
    out << content;
    ASSERT_TRUE(out.good()) << "cannot write " << Trigger();
  }
  static void ClearFault() {
    std::error_code ec;
    std::filesystem::remove(Trigger(), ec);
    ASSERT_FALSE(ec) << ec.message();
    std::filesystem::remove(Trigger() + ".sites", ec);
    std::filesystem::remove(Trigger() + ".fired", ec);
  }
  // A new version of the trigger (a new file renamed over it): restarts the
  // nth/once count, as a campaign does.
  static void ArmFault(const std::string& content) {
    const std::string tmp = Trigger() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << content;
      ASSERT_TRUE(out.good()) << "cannot write " << tmp;
    }
    ASSERT_EQ(std::rename(tmp.c_str(), Trigger().c_str()), 0);
  }
  static std::vector<std::string> Lines(const std::string& path) {
    std::vector<std::string> lines;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(line);
    }
    return lines;
  }

  SecretKeyPtr NewKey(KeyType type, const std::string& label, uint8_t id) {
    auto info = ks().GenerateKey(type, KeyUsage::kGeneric, label, Bytes{id});
    EXPECT_TRUE(info.ok()) << info.error().ToString();
    auto key = ks().FindSecretKey(KeySelector::Label(label));
    EXPECT_TRUE(key.ok()) << key.error().ToString();
    return key.ok() ? std::move(*key) : nullptr;
  }

  Status Hmac(const SecretKeyPtr& key, std::array<uint8_t, 32>& mac) {
    static constexpr std::array<uint8_t, 5> kData = {'t', 'k', 'm', 's', '!'};
    const ByteSpan parts[] = {ByteSpan(kData)};
    return ks().provider().Hmac(HashAlg::kSha256, *key, parts, mac);
  }

  std::unique_ptr<SoftHsmToken> token_;
  std::unique_ptr<Keystore> keystore_;
};

MATCHER_P2(FailsWith, code, ckr_name, "") {
  const Status& status = arg;
  *result_listener << "status " << status.ToString();
  return status.code() == code && status.message().find(ckr_name) != std::string::npos;
}

TEST_F(fault_pkcs11_Shim, HmacAndRandomAreUnavailableWhileTriggeredAndRecoverWithoutReopen) {
  SecretKeyPtr key = NewKey(KeyType::kHmacSha256, "hmac", 0x01);
  ASSERT_NE(key, nullptr);
  std::array<uint8_t, 32> before{};
  ASSERT_TRUE(Hmac(key, before).ok());
  std::array<uint8_t, 16> random{};
  ASSERT_TRUE(ks().GenerateRandom(random).ok());

  SetFault();  // empty file: CKR_DEVICE_ERROR
  // Twice: first on the pooled session (C_SignInit), then on a new session
  // (the failed one was discarded, so C_OpenSession).
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    std::array<uint8_t, 32> mac{};
    const Status hmac = Hmac(key, mac);
    EXPECT_THAT(hmac, FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_ERROR"));
    EXPECT_TRUE(IsRetryable(hmac));
    EXPECT_THAT(ks().GenerateRandom(random),
                FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_ERROR"));
    EXPECT_THAT(ks().provider().Random(random),
                FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_ERROR"));
  }

  ClearFault();
  std::array<uint8_t, 32> after{};
  const Status hmac = Hmac(key, after);
  ASSERT_TRUE(hmac.ok()) << hmac.ToString();
  EXPECT_EQ(after, before);
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
  EXPECT_TRUE(ks().provider().Random(random).ok());
}

TEST_F(fault_pkcs11_Shim, AesCtrIsUnavailableWhileTriggeredAndRecovers) {
  SecretKeyPtr key = NewKey(KeyType::kAes256, "aes", 0x02);
  ASSERT_NE(key, nullptr);
  const std::array<uint8_t, 16> iv = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
                                      0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};
  std::vector<uint8_t> plain(40, 0x5a);
  std::vector<uint8_t> before(plain.size());
  ASSERT_TRUE(ks().provider().AesCtr(*key, iv, plain, before).ok());

  SetFault("CKR_DEVICE_REMOVED\n");
  std::vector<uint8_t> out(plain.size());
  EXPECT_THAT(ks().provider().AesCtr(*key, iv, plain, out),
              FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_REMOVED"));
  auto listed = ks().ListKeys();  // C_OpenSession / C_FindObjectsInit
  ASSERT_FALSE(listed.ok());
  EXPECT_THAT(listed.error(), FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_REMOVED"));

  ClearFault();
  const Status status = ks().provider().AesCtr(*key, iv, plain, out);
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(out, before);
  auto keys = ks().ListKeys();
  ASSERT_TRUE(keys.ok()) << keys.error().ToString();
  EXPECT_EQ(keys->size(), 1u);
}

TEST_F(fault_pkcs11_Shim, TheTriggerFileNamesTheCode) {
  struct Case {
    std::string content;
    const char* ckr;
    StatusCode code;
  };
  const Case cases[] = {
      {"", "CKR_DEVICE_ERROR", StatusCode::kUnavailable},
      {"CKR_DEVICE_ERROR", "CKR_DEVICE_ERROR", StatusCode::kUnavailable},
      {"CKR_DEVICE_REMOVED\n", "CKR_DEVICE_REMOVED", StatusCode::kUnavailable},
      {"  CKR_TOKEN_NOT_PRESENT \n", "CKR_TOKEN_NOT_PRESENT", StatusCode::kUnavailable},
      {"CKR_SESSION_HANDLE_INVALID", "CKR_SESSION_HANDLE_INVALID", StatusCode::kUnavailable},
      // An operation's CKR_GENERAL_ERROR is the token's trouble too: 503, not
      // 500 (pkcs11::FromCkRvOperation; docs/reliability.md).
      {"CKR_GENERAL_ERROR", "CKR_GENERAL_ERROR", StatusCode::kUnavailable},
      {"CKR_HOST_MEMORY", "CKR_HOST_MEMORY", StatusCode::kResourceExhausted},
      {"CKR_DEVICE_MEMORY", "CKR_DEVICE_MEMORY", StatusCode::kUnavailable},
      {"CKR_DEVICE_ERROR once", "CKR_DEVICE_ERROR", StatusCode::kUnavailable},
      {"no such code", "CKR_DEVICE_ERROR", StatusCode::kUnavailable},
  };
  std::array<uint8_t, 8> random{};
  for (const Case& c : cases) {
    SCOPED_TRACE("trigger file content '" + c.content + "'");
    SetFault(c.content);  // rewritten in place: read per call
    EXPECT_THAT(ks().GenerateRandom(random), FailsWith(c.code, c.ckr));
  }
  ClearFault();
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
}

TEST_F(fault_pkcs11_Shim, OnceFailsOnlyTheFirstMatchingCallOfThisTriggerVersion) {
  std::array<uint8_t, 8> random{};
  ArmFault("CKR_DEVICE_ERROR fn=C_GenerateRandom once");
  EXPECT_THAT(ks().GenerateRandom(random), FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_ERROR"));
  // Then a pass-through while the file stays (a new session is opened: not
  // C_GenerateRandom, so not failed either).
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(ks().GenerateRandom(random).ok()) << i;
  const auto fired = Lines(Trigger() + ".fired");
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_THAT(fired[0], ::testing::MatchesRegex("C_GenerateRandom@.+\\+0x[0-9a-f]+ tid=[0-9]+ CKR_DEVICE_ERROR"));
  // A new version of the file arms it again.
  ArmFault("CKR_GENERAL_ERROR fn=C_GenerateRandom once");
  EXPECT_THAT(ks().GenerateRandom(random), FailsWith(StatusCode::kUnavailable, "CKR_GENERAL_ERROR"));
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
}

TEST_F(fault_pkcs11_Shim, NthFailsTheNthMatchingCall) {
  std::array<uint8_t, 8> random{};
  ArmFault("CKR_DEVICE_REMOVED fn=C_GenerateRandom nth=3");
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
  EXPECT_THAT(ks().GenerateRandom(random), FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_REMOVED"));
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
  EXPECT_EQ(Lines(Trigger() + ".fired").size(), 1u);
}

TEST_F(fault_pkcs11_Shim, RecordNamesTheSitesAndSiteSelectsOne) {
  SecretKeyPtr key = NewKey(KeyType::kHmacSha256, "hmac", 0x04);
  ASSERT_NE(key, nullptr);
  std::array<uint8_t, 8> random{};
  std::array<uint8_t, 32> mac{};
  ArmFault("record");
  ASSERT_TRUE(ks().GenerateRandom(random).ok());  // record never fails
  ASSERT_TRUE(Hmac(key, mac).ok());
  const auto sites = Lines(Trigger() + ".sites");
  std::string random_site;
  for (const std::string& line : sites) {
    EXPECT_THAT(line, ::testing::MatchesRegex("C_[A-Za-z]+@.+\\+0x[0-9a-f]+ tid=[0-9]+")) << line;
    if (line.starts_with("C_GenerateRandom@")) random_site = line.substr(0, line.find(' '));
  }
  ASSERT_FALSE(random_site.empty()) << ::testing::PrintToString(sites);
  EXPECT_TRUE(std::any_of(sites.begin(), sites.end(), [](const std::string& l) { return l.starts_with("C_Sign@"); }));

  // That exact site fails; other functions and other return addresses do not.
  ArmFault("CKR_SESSION_HANDLE_INVALID site=" + random_site);
  EXPECT_THAT(ks().GenerateRandom(random), FailsWith(StatusCode::kUnavailable, "CKR_SESSION_HANDLE_INVALID"));
  EXPECT_TRUE(Hmac(key, mac).ok());
  ArmFault("CKR_SESSION_HANDLE_INVALID site=C_GenerateRandom@elsewhere+0x1");
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
}

TEST_F(fault_pkcs11_Shim, ThreadFilters) {
  std::array<uint8_t, 8> random{};
  const std::string me = std::to_string(static_cast<long>(::gettid()));
  ArmFault("CKR_DEVICE_ERROR skip-tid=" + me);
  EXPECT_TRUE(ks().GenerateRandom(random).ok());
  Status other;
  std::thread([&] { other = ks().GenerateRandom(random); }).join();
  EXPECT_THAT(other, FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_ERROR"));
  ArmFault("CKR_DEVICE_ERROR tid=" + me);
  std::thread([&] { other = ks().GenerateRandom(random); }).join();
  EXPECT_TRUE(other.ok()) << other.ToString();
  EXPECT_THAT(ks().GenerateRandom(random), FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_ERROR"));
}

TEST_F(fault_pkcs11_Shim, KeyManagementFailsOnlyWhenNamed) {
  ASSERT_NE(NewKey(KeyType::kAes256, "aes", 0x05), nullptr);
  SetFault("CKR_DEVICE_ERROR fn=C_FindObjects");
  auto listed = ks().ListKeys();
  ASSERT_FALSE(listed.ok());
  EXPECT_THAT(listed.error(), FailsWith(StatusCode::kUnavailable, "CKR_DEVICE_ERROR"));
  ClearFault();
  EXPECT_TRUE(ks().ListKeys().ok());
}

TEST_F(fault_pkcs11_Shim, ModuleQueriesPassThroughWhileTriggered) {
  const ModuleInfo& info = token_->module()->info();
  EXPECT_EQ(info.cryptoki_major, 2u);
  EXPECT_FALSE(info.manufacturer.empty());
  if (std::getenv("TKMS_FAULT_REAL_MODULE") == nullptr) {
    EXPECT_EQ(info.manufacturer, "SoftHSM");  // the real module's CK_INFO
  }

  SetFault();
  CK_FUNCTION_LIST& fns = token_->module()->fns();
  CK_INFO ck_info{};
  EXPECT_EQ(fns.C_GetInfo(&ck_info), CKR_OK);
  CK_ULONG slots = 0;
  EXPECT_EQ(fns.C_GetSlotList(CK_TRUE, nullptr, &slots), CKR_OK);
  EXPECT_GE(slots, 1u);
  CK_TOKEN_INFO token_info{};
  EXPECT_EQ(fns.C_GetTokenInfo(ks().token().slot_id, &token_info), CKR_OK);
  CK_FUNCTION_LIST* again = nullptr;
  EXPECT_EQ(fns.C_GetFunctionList(&again), CKR_OK);
  EXPECT_EQ(again, &fns);
  // A wrapped call, raw: the fault code itself.
  CK_SESSION_HANDLE session = 0;
  EXPECT_EQ(fns.C_OpenSession(ks().token().slot_id, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                              nullptr, &session),
            CKR_DEVICE_ERROR);
  EXPECT_EQ(session, 0u);
}

TEST_F(fault_pkcs11_Shim, ConcurrentCallersSeeOkOrUnavailableAndAllRecover) {
  SecretKeyPtr key = NewKey(KeyType::kHmacSha256, "hmac", 0x03);
  ASSERT_NE(key, nullptr);
  std::array<uint8_t, 32> expected{};
  ASSERT_TRUE(Hmac(key, expected).ok());

  std::atomic<bool> stop{false};
  std::atomic<int> ok{0};
  std::atomic<int> unavailable{0};
  std::atomic<int> other{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      while (!stop.load()) {
        std::array<uint8_t, 32> mac{};
        const Status status = Hmac(key, mac);
        if (status.ok() && mac == expected) {
          ++ok;
        } else if (status.code() == StatusCode::kUnavailable) {
          ++unavailable;
        } else {
          ++other;
        }
      }
    });
  }
  for (int i = 0; i < 20; ++i) {
    SetFault();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ClearFault();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (std::thread& worker : workers) worker.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(unavailable.load(), 0);

  std::array<uint8_t, 32> mac{};
  for (int i = 0; i < 8; ++i) {
    const Status status = Hmac(key, mac);
    ASSERT_TRUE(status.ok()) << status.ToString();
    EXPECT_EQ(mac, expected);
  }
}

// ---- a real module that cannot be used ----------------------------------------

// Runs in a fresh child process: loads the shim with TKMS_FAULT_REAL_MODULE =
// `real` and exits 0 if Module::Load failed cleanly (kInternal from the
// shim's CKR_GENERAL_ERROR), printing the error for the parent's regex.
[[noreturn]] void LoadShimWithRealModule(const std::string& real) {
  setenv("TKMS_FAULT_REAL_MODULE", real.c_str(), 1);
  Result<std::shared_ptr<Module>> module = Module::Load(TKMS_FAULT_MODULE);
  if (module.ok()) {
    std::fputs("Module::Load unexpectedly succeeded\n", stderr);
    std::_Exit(1);
  }
  std::fprintf(stderr, "Module::Load: %s\n", module.error().ToString().c_str());
  std::_Exit(module.error().code() == StatusCode::kInternal ? 0 : 2);
}

TEST(fault_pkcs11_ShimDeathTest, UnusableRealModuleIsACleanLoadError) {
  // Re-execute the binary per case: the shim caches its first load.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const std::string load_error = "C_GetFunctionList failed: CKR_GENERAL_ERROR";
  EXPECT_EXIT(LoadShimWithRealModule("/nonexistent/libtkms-no-such-module.so"),
              ::testing::ExitedWithCode(0),
              "tkms_fault_pkcs11: cannot load real PKCS#11 module "
              "'/nonexistent/libtkms-no-such-module.so'.*" + load_error);
  // A file that is not a shared library.
  EXPECT_EXIT(LoadShimWithRealModule(TKMS_SOURCE_DIR "/tests/pkcs11/lsan.supp"),
              ::testing::ExitedWithCode(0),
              "tkms_fault_pkcs11: cannot load real PKCS#11 module.*" + load_error);
  // A shared library that is not a PKCS#11 module.
  EXPECT_EXIT(LoadShimWithRealModule("libm.so.6"), ::testing::ExitedWithCode(0),
              "tkms_fault_pkcs11: 'libm.so.6' .*is not a PKCS#11 module.*" + load_error);
  // The shim itself (would recurse).
  EXPECT_EXIT(LoadShimWithRealModule(TKMS_FAULT_MODULE), ::testing::ExitedWithCode(0),
              "is the fault module itself.*" + load_error);
}

}  // namespace
}  // namespace tkms::keystore
