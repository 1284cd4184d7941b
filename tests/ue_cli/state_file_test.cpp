// The state file of tkms-ue offer / finish (tools/ue_cli/state_file.h) on its
// own: a written state reads back equal, and every rule of the format has a
// negative case (magic line, field set, duplicates, unknown fields, values),
// with error messages that never echo a value.
#include "tools/ue_cli/state_file.h"

#include <gtest/gtest.h>

#include <string>

namespace tkms::ue_cli {
namespace {

OfferState Sample() {
  OfferState s;
  s.initiator = "sip:alice@example.org";
  s.responder = "sip:bob@example.org";
  s.kms_identity = "kms.example.org";
  s.forking = true;
  s.reusable = false;
  s.csb_id = 0xDEADBEEF;
  s.randri = std::vector<uint8_t>(32, 0xA5);
  s.timestamp = 0xEB3F2A2080000000ull;
  s.valid_to = 0;
  s.rtp_port = 49170;
  s.request_resp = {0x01, 0x0D, 0x02};
  s.transfer_init = {0x01, 0x0E, 0x03};
  return s;
}

// The sample's text with the line of `key` replaced by `line` (erased if empty).
std::string With(const std::string& key, const std::string& line) {
  std::string text = SerializeState(Sample());
  const size_t at = text.find("\n" + key + " ");
  EXPECT_NE(at, std::string::npos) << key;
  const size_t end = text.find('\n', at + 1);
  text.replace(at + 1, end - at, line.empty() ? "" : line + "\n");
  return text;
}

TEST(UeStateFile, WrittenStateReadsBackEqual) {
  const OfferState s = Sample();
  const std::string text = SerializeState(s);
  EXPECT_EQ(text.rfind("tkms-ue-state 2\n", 0), 0u);
  auto back = ParseState(text, "call.state");
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, s);
  // Field order is free, upper-case hex is read, the last LF is optional.
  std::string reordered = "tkms-ue-state 2\ntransfer_init 010E03\n" + text.substr(16);
  reordered.erase(reordered.find("transfer_init 010e03\n"), 21);
  reordered.pop_back();
  auto again = ParseState(reordered, "call.state");
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(*again, s);
}

TEST(UeStateFile, EveryRuleIsEnforced) {
  const std::string good = SerializeState(Sample());
  const std::pair<std::string, std::string> cases[] = {
      {"", "is not a tkms-ue state file"},
      {"tkms-ue-state 3\n" + good.substr(16), "is not a tkms-ue state file"},
      {"tkms-ue-state 1\n" + good.substr(16), "state version 1"},
      {"tkms-ue-state 2\r\n" + good.substr(16), "is not a tkms-ue state file"},
      {good + "\n", "malformed state line"},
      {good + "extra\n", "malformed state line"},
      {good + "colour blue\n", "unknown state field \"colour\""},
      {good + "x\x1b[31m y\n", "unknown state field (unprintable or long)"},
      {good + "rtp_port 1\n", "state field rtp_port twice"},
      {With("valid_to", ""), "lacks valid_to"},
      {With("initiator", "initiator "), "initiator is empty"},
      {With("responder", "responder bob\x01"), "responder contains a control character"},
      {With("kms_identity", "kms_identity kms\r"), "kms_identity contains a control character"},
      {With("forking", "forking 2"), "forking must be 0 or 1"},
      {With("reusable", "reusable yes"), "reusable must be 0 or 1"},
      {With("csb_id", "csb_id 4294967296"), "bad number"},
      {With("csb_id", "csb_id -1"), "bad number"},
      {With("timestamp", "timestamp +5"), "bad number"},
      {With("rtp_port", "rtp_port 65536"), "bad number"},
      {With("valid_to", "valid_to "), "bad number"},
      {With("randri", "randri "), "bad hex"},
      {With("randri", "randri abc"), "bad hex"},
      {With("request_resp", "request_resp zz"), "bad hex"},
      {With("transfer_init", "transfer_init 01 0e"), "bad hex"},
      {std::string(kMaxStateBytes + 1, 'a'), "is too large"},
  };
  for (const auto& [text, words] : cases) {
    auto parsed = ParseState(text, "call.state");
    ASSERT_FALSE(parsed.ok()) << words;
    EXPECT_EQ(parsed.error().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(parsed.error().message().rfind("call.state", 0), 0u) << parsed.error().message();
    EXPECT_NE(parsed.error().message().find(words), std::string::npos) << parsed.error().message();
    EXPECT_EQ(parsed.error().message().find('\x1b'), std::string::npos);
    EXPECT_EQ(parsed.error().message().find("blue"), std::string::npos);  // values are not echoed
  }
}

}  // namespace
}  // namespace tkms::ue_cli
