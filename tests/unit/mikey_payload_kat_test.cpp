// Known answers for every payload: each row is a payload encoded by hand from
// the layout diagram of its RFC clause (cited per row), compared with what the
// codec writes, then decoded back inside a message.
#include <gtest/gtest.h>

#include <string>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"

namespace tkms::mikey {
namespace {

// `n` copies of the byte `hex_byte`, as hex.
std::string Rep(size_t n, const char* hex_byte) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += hex_byte;
  return out;
}

Bytes B(const std::string& hex) { return HexDecode(StripWhitespace(hex)).value(); }

struct Row {
  const char* name;
  const char* clause;
  Payload payload;
  std::string hex;  // with next payload = 0 (SIGN has none)
};

std::vector<Row> Rows() {
  TicketPolicy policy;
  policy.ticket_type = 2;  // 3GPP base ticket: Ticket Data is opaque
  policy.prf_func = 1;
  policy.flags = kFlagD | kFlagE | kFlagF | kFlagG | kFlagH | kFlagN | kFlagO;
  policy.tp_data.emplace_back(IdrPayload{2, 1, B("7369703a624078")});
  const std::string policy_hex = "0002 00 00 03 f0 60 000d 0e 00 02 01 0007 7369703a624078";
  DhPayload dh{1, Bytes(96, 0x5a), KeyValidity{1, B("aabb"), {}, {}}};
  return {
      {"KEMAC", "RFC 3830 §6.2", KemacPayload{1, B("a1a2a3a4"), 1, Bytes(20, 0xb0)},
       "00 01 0004 a1a2a3a4 01" + Rep(20, "b0")},
      {"PKE", "RFC 3830 §6.3", PkePayload{1, B("c1c2c3")}, "00 4003 c1c2c3"},
      {"DH", "RFC 3830 §6.4", dh, "00 01" + Rep(96, "5a") + "01 02 aabb"},
      {"SIGN", "RFC 3830 §6.5, RFC 6509 §4.3", SignPayload{2, B("d1d2d3d4")}, "2004 d1d2d3d4"},
      {"T NTP-UTC", "RFC 3830 §6.6", TPayload{0, 0x0102030405060708ull}, "00 00 0102030405060708"},
      {"T COUNTER", "RFC 3830 §6.6", TPayload{2, 42}, "00 02 0000002a"},
      {"ID", "RFC 3830 §6.7", IdPayload{1, B("7369703a614078")}, "00 01 0007 7369703a614078"},
      {"CERT", "RFC 3830 §6.7", CertPayload{1, B("616263")}, "00 01 0003 616263"},
      {"CHASH", "RFC 3830 §6.8", ChashPayload{1, Bytes(16, 0x4d)}, "00 01" + Rep(16, "4d")},
      {"V", "RFC 3830 §6.9", VPayload{1, Bytes(20, 0x76)}, "00 01" + Rep(20, "76")},
      {"SP", "RFC 3830 §6.10", SpPayload{1, 0, {{0, {1}}, {1, {16}}}}, "00 01 00 0006 00 01 01 01 01 10"},
      {"RAND", "RFC 3830 §6.11", RandPayload{Bytes(16, 0x52)}, "00 10" + Rep(16, "52")},
      {"ERR", "RFC 3830 §6.12, RFC 6043 §6.9", ErrPayload{14}, "00 0e 0000"},
      {"General Extension", "RFC 3830 §6.15, RFC 4567 §4.1.4", GeneralExtPayload{1, B("6d696b6579")},
       "00 01 0005 6d696b6579"},
      {"TR", "RFC 6043 §6.4", TrPayload{3, 3, 0xeb40a190}, "00 03 03 eb40a190"},
      {"IDR", "RFC 6043 §6.6, RFC 6509 §4.4", IdrPayload{6, 1, B("6b6d73")}, "00 06 01 0003 6b6d73"},
      {"RANDR", "RFC 6043 §6.8", RandrPayload{3, Bytes(16, 0x33)}, "00 03 10" + Rep(16, "33")},
      {"TP", "RFC 6043 §6.10", TpPayload{policy}, "00" + policy_hex},
      {"TICKET", "RFC 6043 §6.10", TicketPayload{policy, B("010203"), std::nullopt},
       "00" + policy_hex + "0003 010203 0000"},
      {"SAKKE", "RFC 6509 §4.2", SakkePayload{1, 1, B("e1e2")}, "00 01 01 0002 e1e2"},
  };
}

class PayloadKnownAnswer : public ::testing::TestWithParam<Row> {};

TEST_P(PayloadKnownAnswer, EncodesAsTheRfcLayout) {
  const Row& row = GetParam();
  auto bytes = EncodePayload(row.payload, 0);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  EXPECT_EQ(HexEncode(*bytes), StripWhitespace(row.hex)) << row.name << " (" << row.clause << ")";
}

TEST_P(PayloadKnownAnswer, DecodesBackInsideAMessage) {
  // HDR of a PSK_INIT with no CS, next payload = this payload; the payload is
  // last. Composition is not checked: only the payload's own layout matters.
  const Row& row = GetParam();
  Bytes message = B("01 00 00 00 00000001 00 01");
  message[2] = static_cast<uint8_t>(TypeOf(row.payload));
  const Bytes payload = B(row.hex);
  message.insert(message.end(), payload.begin(), payload.end());
  DecodeOptions options;
  options.check_composition = false;
  auto m = Decode(message, options);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  ASSERT_EQ(m->payloads.size(), 1u);
  EXPECT_EQ(m->payloads[0], row.payload) << row.name;
}

INSTANTIATE_TEST_SUITE_P(Rfc, PayloadKnownAnswer, ::testing::ValuesIn(Rows()),
                         [](const auto& param_info) {
                           std::string name = param_info.param.name;
                           for (char& c : name) {
                             if (c == ' ' || c == '-') c = '_';
                           }
                           return name;
                         });

TEST(PayloadKnownAnswer, KeyDataSubPayload) {
  // RFC 3830 §6.13/§6.14: next 0, Type TEK+SALT (3) / KV Interval (2), key,
  // salt, Valid From and Valid To as 6-byte SRTP indexes.
  KeyDataPayload k;
  k.key_type = 3;
  k.key = SecretBytes(16, 0x4b);
  k.salt = SecretBytes(14, 0x53);
  k.kv = KeyValidity{2, {}, Bytes(6, 0x00), B("0000ffffffff")};
  const std::string hex = "00 32 0010" + Rep(16, "4b") + "000e" + Rep(14, "53") +
                          "06 000000000000 06 0000ffffffff";
  auto plain = EncodeKeyDataChain({k});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(HexEncode(*plain), StripWhitespace(hex));
  auto back = DecodeKeyDataChain(B(hex));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ((*back)[0], k);
}

TEST(PayloadKnownAnswer, BaseTicketDataWithThdr) {
  // RFC 6043 Appendix A.1/A.3: THDR (next T, length 2), T (next RAND),
  // RAND (next KEMAC), KEMAC NULL/NULL (next V), V HMAC-SHA-256.
  const std::string hex = "05 0002 0001" "0b 00 0102030405060708" "01 10" + Rep(16, "52") +
                          "09 00 0000 00" "00 02" + Rep(32, "76");
  BaseTicketData b;
  b.thdr.data = B("0001");
  b.t = TPayload{0, 0x0102030405060708ull};
  b.rand.rand = Bytes(16, 0x52);
  b.kemac = KemacPayload{0, {}, 0, {}};
  b.v = VPayload{2, Bytes(32, 0x76)};
  auto encoded = EncodeBaseTicketData(b);
  ASSERT_TRUE(encoded.ok()) << encoded.error().ToString();
  EXPECT_EQ(HexEncode(*encoded), StripWhitespace(hex));
  auto decoded = DecodeBaseTicketData(B(hex));
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, b);
}

TEST(PayloadKnownAnswer, CommonHeaderWithGenericIdMap) {
  // RFC 6043 §6.1.1: TRANSFER_INIT, V=1, PRF-HMAC-SHA-256, CSB 0x55667788,
  // #CS 1, GENERIC-ID; block: CS ID 1, SRTP, S=0 #P=1, policy 1, Session Data
  // length 4 (SSRC 0x11111111), SPI length 0. Then a V payload ends it.
  Message m;
  m.header.data_type = 14;
  m.header.v = true;
  m.header.prf_func = 1;
  m.header.csb_id = 0x55667788;
  m.header.cs_count = 1;
  m.header.cs_id_map_type = 2;
  m.header.generic_map = {GenericIdEntry{1, 0, false, {1}, B("11111111"), {}}};
  m.payloads.emplace_back(VPayload{0, {}});
  auto bytes = Encode(m);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  EXPECT_EQ(HexEncode(*bytes), "010e098155667788010201000101000411111111000000");
}

}  // namespace
}  // namespace tkms::mikey
