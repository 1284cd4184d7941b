// Module loading (pkcs11/module.h): clear errors for bad module paths, one
// initialisation per process, and the fork() guard.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "pkcs11/module.h"
#include "pkcs11/token.h"
#include "tests/pkcs11/softhsm_fixture.h"

namespace tkms::pkcs11 {
namespace {

using test::SoftHsmToken;

// A shared library that certainly is not a PKCS#11 module.
std::string SomeNonPkcs11Library() {
  for (const char* path : {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/x86_64-linux-gnu/libc.so.6",
                           "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6"}) {
    if (std::filesystem::exists(path)) return path;
  }
  return {};
}

TEST(pkcs11_Module, LoadsTheModuleUnderTest) {
  auto token = SoftHsmToken::Create();
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  const Module& module = *(*token)->module();
  EXPECT_TRUE(module.CheckProcess().ok());
  EXPECT_EQ(module.path(), test::ModulePathFromEnv());
  EXPECT_FALSE(module.info().manufacturer.empty());
  EXPECT_EQ(module.info().cryptoki_major, 2u);
}

TEST(pkcs11_Module, MissingFileIsAClearError) {
  Result<std::shared_ptr<Module>> module = Module::Load("/nonexistent/libnothing.so");
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(module.error().message(),
            "PKCS#11 module /nonexistent/libnothing.so not found: No such file or directory");
}

TEST(pkcs11_Module, NonPkcs11LibraryIsAClearError) {
  const std::string libc = SomeNonPkcs11Library();
  if (libc.empty()) GTEST_SKIP() << "no libc.so.6 found";
  Result<std::shared_ptr<Module>> module = Module::Load(libc);
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(module.error().message(),
            libc + " is not a PKCS#11 module (it has no C_GetFunctionList)");
}

TEST(pkcs11_Module, NonLibraryFileAndDirectoryAreClearErrors) {
  const std::string text = testing::TempDir() + "/tkms-not-a-library.so";
  { std::ofstream(text) << "not ELF\n"; }
  Result<std::shared_ptr<Module>> module = Module::Load(text);
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(module.error().message().rfind("cannot load PKCS#11 module " + text + ": ", 0), 0u)
      << module.error().message();
  std::filesystem::remove(text);

  module = Module::Load("/");
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.error().message(), "PKCS#11 module / is not a regular file");
  EXPECT_EQ(Module::Load("").error().code(), StatusCode::kInvalidArgument);
}

TEST(pkcs11_Module, InitializeFailureIsAClearError) {
  const std::string path = test::ModulePathFromEnv();
  if (path.find("softhsm") == std::string::npos) GTEST_SKIP() << "SoftHSM2-specific";
  // SoftHSM2 cannot initialise without its configuration file.
  ASSERT_EQ(setenv("SOFTHSM2_CONF", "/nonexistent/softhsm2.conf", 1), 0);
  Result<std::shared_ptr<Module>> module = Module::Load(path);
  unsetenv("SOFTHSM2_CONF");
  ASSERT_FALSE(module.ok());
  EXPECT_EQ(module.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(module.error().message(), "C_Initialize failed: CKR_GENERAL_ERROR (0x5) (PKCS#11 module " +
                                          path + "; check its configuration)");
  // The library is usable again once configured.
  auto token = SoftHsmToken::Create();
  EXPECT_TRUE(token.ok()) << token.error().ToString();
}

TEST(pkcs11_Module, OneInitialisationPerProcess) {
  auto token = SoftHsmToken::Create();
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  Result<std::shared_ptr<Module>> second = Module::Load((*token)->module_path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.error().message().find("already initialised in this process"),
            std::string::npos);
  // The failed second load left the first one working.
  Result<std::vector<TokenInfo>> tokens = ListTokens(*(*token)->module());
  ASSERT_TRUE(tokens.ok()) << tokens.error().ToString();
}

TEST(pkcs11_Module, RefusedAfterFork) {
  auto token = SoftHsmToken::Create();
  ASSERT_TRUE(token.ok()) << token.error().ToString();
  std::shared_ptr<Module> module = (*token)->module();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    const Status status = module->CheckProcess();
    const bool message_ok = status.message() ==
                            "PKCS#11 module used after fork(): re-open the keystore in the child";
    Result<std::vector<TokenInfo>> tokens = ListTokens(*module);
    const bool list_refused =
        !tokens.ok() && tokens.error().code() == StatusCode::kFailedPrecondition;
    _exit(message_ok && list_refused ? static_cast<int>(status.code()) : 100);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(pid, &wstatus, 0), pid);
  ASSERT_TRUE(WIFEXITED(wstatus));
  EXPECT_EQ(WEXITSTATUS(wstatus), static_cast<int>(StatusCode::kFailedPrecondition));
  EXPECT_TRUE(module->CheckProcess().ok());
}

}  // namespace
}  // namespace tkms::pkcs11
