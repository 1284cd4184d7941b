// Unit tests of the tkmsctl commands and command line (tools/tkmsctl/
// mikey_command.h, cli.h) run in-process: every input form gives the same
// JSON, errors carry the "tkmsctl: " prefix, the rule and the offset, and the
// exit status is 0, 1 or 2 as documented.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "tests/support/mikey_samples.h"
#include "tools/tkmsctl/cli.h"
#include "tools/tkmsctl/mikey_command.h"

namespace tkms::tkmsctl {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

ByteSpan Span(const std::string& s) { return ByteSpan(reinterpret_cast<const uint8_t*>(s.data()), s.size()); }

std::string VectorB64(const std::string& stem) {
  std::ifstream in(std::string(TKMS_SOURCE_DIR) + "/tests/vectors/mikey/" + stem + ".b64");
  std::stringstream s;
  s << in.rdbuf();
  return StripWhitespace(s.str());
}

struct CliRun {
  int code = 0;
  std::string out;
  std::string err;
};

CliRun Cli(std::vector<const char*> args) {
  args.insert(args.begin(), "tkmsctl");
  std::ostringstream out;
  std::ostringstream err;
  const int code = RunCli(static_cast<int>(args.size()), args.data(), out, err);
  return {code, out.str(), err.str()};
}

class TempFile {
 public:
  explicit TempFile(const std::string& contents)
      : path_(std::filesystem::temp_directory_path() /
              ("tkmsctl_test_" + std::to_string(reinterpret_cast<uintptr_t>(this)) + ".in")) {
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

TEST(tkmsctl_Command, EveryInputFormGivesTheSameJson) {
  const std::string b64 = VectorB64("request_init_psk");
  const auto bytes = *Base64Decode(b64);
  const std::string raw(bytes.begin(), bytes.end());
  const CommandOutput want = RunMikeyDecode(Span(b64));
  ASSERT_EQ(want.exit_code, kExitOk) << want.err;
  EXPECT_THAT(want.out, StartsWith("{\n  \"header\": {\n    \"version\": 1,"));
  const std::vector<std::string> forms = {
      b64 + "\n",
      HexEncode(bytes),
      raw,
      "a=key-mgmt:mikey " + b64 + "\r\n",
      "v=0\r\ns=-\r\nt=0 0\r\na=key-mgmt:mikey " + b64 + "\r\nm=audio 4000 RTP/SAVP 0\r\n",
      "POST /keymanagement?requesttype=ticketrequest HTTP/1.1\r\nHost: kms.example.org\r\n"
      "Content-Type: application/mikey\r\nContent-Length: " + std::to_string(b64.size()) + "\r\n\r\n" + b64,
      "HTTP/1.1 200 OK\r\nContent-Type: application/mikey\r\nContent-Length: " + std::to_string(raw.size()) +
          "\r\n\r\n" + raw,
  };
  for (const auto& form : forms) {
    const CommandOutput got = RunMikeyDecode(Span(form));
    EXPECT_EQ(got.exit_code, kExitOk) << got.err;
    EXPECT_EQ(got.out, want.out) << form.substr(0, 60);
  }
  DecodeCommandOptions compact;
  compact.compact = true;
  const CommandOutput one_line = RunMikeyDecode(Span(b64), compact);
  EXPECT_EQ(one_line.out.find('\n'), one_line.out.size() - 1);
  EXPECT_EQ(RunMikeyEncode(Span(one_line.out)).out, b64 + "\n");
}

TEST(tkmsctl_Command, DecodeErrorsNameRuleAndOffset) {
  const std::string b64 = VectorB64("error");
  auto bytes = *Base64Decode(b64);
  bytes.resize(20);
  CommandOutput r = RunMikeyDecode(bytes);
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_TRUE(r.out.empty());
  EXPECT_THAT(r.err, StartsWith("tkmsctl: offset 20: truncated: input ends inside"));
  EXPECT_EQ(r.err.find("note:"), std::string::npos);  // raw input: no note

  r = RunMikeyDecode(Span(Base64Encode(bytes)));
  EXPECT_THAT(r.err, StartsWith("tkmsctl: offset 20: truncated:"));
  EXPECT_THAT(r.err, HasSubstr("\ntkmsctl: note: input read as base64"));

  bytes = *Base64Decode(VectorB64("request_init_psk"));
  bytes[3] = 0x05;  // PRF func 5
  r = RunMikeyDecode(Span(HexEncode(bytes)));
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_THAT(r.err, StartsWith("tkmsctl: offset 3: prf_func: PRF func 5 is not defined (MIKEY error 2, Invalid PRF)"));
  // An Error message copies the PRF func of the message in error, whatever
  // it was (RFC 6043 §5.4): PRF func 5 is accepted there.
  bytes = *Base64Decode(b64);
  bytes[3] = 0x05;
  r = RunMikeyDecode(Span(HexEncode(bytes)));
  EXPECT_EQ(r.exit_code, 0) << r.err;

  r = RunMikeyDecode(Span("v=0\na=key-mgmt:MIKEY " + b64 + "\n"));
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_THAT(r.err, StartsWith("tkmsctl: input offset 15: sdp: the protocol identifier is case-sensitive"));

  DecodeCommandOptions hex;
  hex.format = InputFormat::kHex;
  r = RunMikeyDecode(Span(b64), hex);
  EXPECT_THAT(r.err, StartsWith("tkmsctl: input offset 1: hex: unexpected character 'Q'"));
}

TEST(tkmsctl_Command, EncodeErrorsNameThePath) {
  const std::string b64 = VectorB64("request_init_psk");
  std::string json = RunMikeyDecode(Span(b64)).out;
  const std::string from = "\"rand\": \"01080f";
  const size_t at = json.find(from);
  ASSERT_NE(at, std::string::npos);
  json.replace(at, from.size(), "\"rand\": \"zz080f");
  const CommandOutput r = RunMikeyEncode(Span(json));
  EXPECT_EQ(r.exit_code, kExitInvalid);
  EXPECT_TRUE(r.out.empty());
  EXPECT_EQ(r.err, "tkmsctl: payloads[1].rand: not a hex string: character 0 is not a hex digit\n");
  EXPECT_THAT(RunMikeyEncode(Span("{")).err,
              StartsWith("tkmsctl: JSON syntax error at byte offset 1 (line 1, column 2)"));
  const std::string big(kMaxInputBytes + 1, ' ');
  EXPECT_THAT(RunMikeyEncode(Span(big)).err, HasSubstr("exceeds the limit of 1048576 bytes (1 MiB)"));
}

TEST(tkmsctl_Command, CliDecodeAndEncodeFiles) {
  const std::string b64 = VectorB64("sakke");
  const TempFile in(b64 + "\n");
  const CliRun dec = Cli({"mikey", "decode", in.path().c_str()});
  EXPECT_EQ(dec.code, 0) << dec.err;
  EXPECT_THAT(dec.out, HasSubstr("\"data_type_name\": \"SAKKE\""));
  const TempFile json(dec.out);
  const CliRun enc = Cli({"mikey", "encode", json.path().c_str()});
  EXPECT_EQ(enc.code, 0) << enc.err;
  EXPECT_EQ(enc.out, b64 + "\n");
  const CliRun forced = Cli({"mikey", "decode", "--format", "base64", "--compact", in.path().c_str()});
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(forced.out.find('\n'), forced.out.size() - 1);
}

TEST(tkmsctl_Command, CliExitStatus) {
  CliRun r = Cli({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("mikey"));
  EXPECT_THAT(r.out, HasSubstr("Exit status"));
  r = Cli({"mikey", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("decode"));
  EXPECT_THAT(r.out, HasSubstr("encode"));
  r = Cli({"mikey", "decode", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("--format"));
  r = Cli({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, StartsWith("tkmsctl "));

  r = Cli({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, StartsWith("tkmsctl: "));
  EXPECT_EQ(Cli({"mikey"}).code, kExitUsage);
  EXPECT_EQ(Cli({"frobnicate"}).code, kExitUsage);
  EXPECT_EQ(Cli({"mikey", "decode", "--format", "xml"}).code, kExitUsage);
  EXPECT_EQ(Cli({"mikey", "decode", "a", "b"}).code, kExitUsage);
  EXPECT_EQ(Cli({"mikey", "encode", "--bogus"}).code, kExitUsage);

  r = Cli({"mikey", "decode", "/nonexistent/tkmsctl-input"});
  EXPECT_EQ(r.code, kExitInvalid);
  EXPECT_THAT(r.err, StartsWith("tkmsctl: cannot open '/nonexistent/tkmsctl-input'"));
}

TEST(tkmsctl_Command, ReadInputFileBoundsTheSize) {
  const TempFile at_limit(std::string(kMaxInputBytes, 'A'));
  auto ok = ReadInputFile(at_limit.path());
  ASSERT_TRUE(ok.ok()) << ok.error();
  EXPECT_EQ(ok->size(), kMaxInputBytes);
  const TempFile over(std::string(kMaxInputBytes + 1, 'A'));
  auto big = ReadInputFile(over.path());
  ASSERT_FALSE(big.ok());
  EXPECT_THAT(big.error(), HasSubstr("exceeds the limit of 1048576 bytes (1 MiB)"));
  auto dir = ReadInputFile(std::filesystem::temp_directory_path().string());
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.error(), HasSubstr("cannot"));
  const TempFile small("abc");
  auto limited = ReadInputFile(small.path(), 2);
  ASSERT_FALSE(limited.ok());
  EXPECT_THAT(limited.error(), HasSubstr("exceeds the limit of 2 bytes"));
}

}  // namespace
}  // namespace tkms::tkmsctl
