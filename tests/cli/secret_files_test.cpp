// PIN and secret files: owner-only permissions, exclusive 0600 creation,
// environment fallback, and errors that never contain the secret.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "firmware/base/secret_files.h"

namespace tkms::tkmsctl {
namespace {

class tkmsctl_SecretFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/tkms-secret-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ::unsetenv("TKMS_TEST_PIN");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& content, mode_t mode) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    ::chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST_F(tkmsctl_SecretFiles, PinFromOwnerOnlyFileWithoutTrailingNewline) {
  auto pin = ReadPin(Write("pin", "123456\n", 0600), "TKMS_TEST_PIN", "PIN");
  ASSERT_TRUE(pin.ok()) << pin.error().ToString();
  EXPECT_EQ(std::string(pin->begin(), pin->end()), "123456");
}

TEST_F(tkmsctl_SecretFiles, PinFileReadableByOthersIsRefusedWithoutEchoingIt) {
  auto pin = ReadPin(Write("pin", "s3cret-pin\n", 0644), "TKMS_TEST_PIN", "PIN");
  ASSERT_FALSE(pin.ok());
  EXPECT_EQ(pin.error().code(), StatusCode::kPermissionDenied);
  EXPECT_NE(pin.error().message().find("chmod 600"), std::string::npos);
  EXPECT_EQ(pin.error().message().find("s3cret"), std::string::npos);
}

TEST_F(tkmsctl_SecretFiles, PinFromEnvironmentOrClearError) {
  auto none = ReadPin(std::nullopt, "TKMS_TEST_PIN", "PIN");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message().find("TKMS_TEST_PIN"), std::string::npos);
  ::setenv("TKMS_TEST_PIN", "4321", 1);
  auto env = ReadPin(std::nullopt, "TKMS_TEST_PIN", "PIN");
  ASSERT_TRUE(env.ok());
  EXPECT_EQ(std::string(env->begin(), env->end()), "4321");
  ::unsetenv("TKMS_TEST_PIN");
  EXPECT_FALSE(ReadPin(Write("empty", "\n", 0600), "TKMS_TEST_PIN", "PIN").ok());
  EXPECT_EQ(ReadPin(dir_ + "/missing", "TKMS_TEST_PIN", "PIN").error().code(), StatusCode::kNotFound);
}

TEST_F(tkmsctl_SecretFiles, HexSecretWrittenExclusivelyWithMode0600AndReadBack) {
  const SecretBytes psk{0x00, 0x01, 0xfe, 0xff};
  const std::string path = dir_ + "/alice.psk";
  ASSERT_TRUE(WriteHexSecretFile(path, psk, "PSK").ok());
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  EXPECT_EQ(text, "0001feff");
  auto back = ReadHexSecretFile(path, "PSK");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, psk);
  // Never overwritten.
  EXPECT_EQ(WriteHexSecretFile(path, psk, "PSK").code(), StatusCode::kFailedPrecondition);
  // Never through a symlink.
  const std::string link = dir_ + "/link.psk";
  ASSERT_EQ(::symlink((dir_ + "/target").c_str(), link.c_str()), 0);
  EXPECT_FALSE(WriteHexSecretFile(link, psk, "PSK").ok());
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/target"));
}

TEST_F(tkmsctl_SecretFiles, HexSecretFileRejectsBadContent) {
  EXPECT_FALSE(ReadHexSecretFile(Write("odd", "abc\n", 0600), "PSK").ok());
  EXPECT_FALSE(ReadHexSecretFile(Write("nothex", "zz\n", 0600), "PSK").ok());
  EXPECT_FALSE(ReadHexSecretFile(Write("open", "0011\n", 0640), "PSK").ok());
}

}  // namespace
}  // namespace tkms::tkmsctl
