// Codec tests: known answers from RFC text and published encodings, round
// trips of every sample, every truncation, and one negative test per rule.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/composition.h"
#include "tests/support/mikey_samples.h"

namespace tkms::mikey {
namespace {

Bytes MustEncode(const Message& m) {
  auto r = Encode(m);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().ToString());
  return r.ok() ? *r : Bytes{};
}

Bytes FromB64(const char* b64) {
  auto r = Base64Decode(b64);
  EXPECT_TRUE(r.has_value());
  return r.value_or(Bytes{});
}

Bytes FromHex(const std::string& hex) {
  auto r = HexDecode(StripWhitespace(hex));
  EXPECT_TRUE(r.has_value());
  return r.value_or(Bytes{});
}

// Decodes and expects failure with `rule`; returns the error.
CodecError ExpectRule(const Bytes& bytes, Rule rule) {
  auto r = Decode(bytes);
  EXPECT_FALSE(r.ok()) << "decoded a message that should fail with " << RuleName(rule);
  if (r.ok()) return {};
  EXPECT_EQ(r.error().rule, rule) << r.error().ToString();
  return r.error();
}

// Offset of the index-th payload of type `type` in an encoded message.
size_t PayloadOffset(const Bytes& bytes, PayloadType type, size_t index = 0) {
  std::vector<PayloadExtent> ext;
  auto m = Decode(bytes, DecodeOptions{}, ext);
  EXPECT_TRUE(m.ok());
  if (!m.ok()) return 0;
  for (size_t i = 0; i < m->payloads.size(); ++i) {
    if (TypeOf(m->payloads[i]) == type && index-- == 0) return ext[i + 1].offset;
  }
  ADD_FAILURE() << "no payload of type " << static_cast<int>(type);
  return 0;
}

// ---------------------------------------------------------------------------
// Known answers

TEST(MikeyKnownAnswer, GstreamerHeaderEncoding) {
  // GStreamer tests/check/libs/mikey.c: v1, PSK_INIT, V=0, PRF MIKEY-1,
  // CSB 0x12345678, SRTP-ID map, #CS 0, no payloads.
  Message m;
  m.header.data_type = 0;
  m.header.csb_id = 0x12345678;
  m.header.cs_id_map_type = 0;
  EXPECT_EQ(HexEncode(MustEncode(m)), "01000000123456780000");
  // With two SRTP-ID entries the map info follows (same test, 28 bytes).
  m.header.srtp_map = {{1, 0x12345678, 0}, {2, 0x23456789, 1}};
  m.header.cs_count = 2;
  EXPECT_EQ(HexEncode(MustEncode(m)),
            "01000000123456780200" "011234567800000000" "022345678900000001");
}

TEST(MikeyKnownAnswer, Rfc4567PskInitMessage) {
  // RFC 4567 §5.1: the I_MESSAGE of the SDP example, field by field.
  const Bytes bytes = FromB64(samples::kRfc4567PskInitB64);
  ASSERT_EQ(bytes.size(), 132u);
  auto m = Decode(bytes);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  const auto& h = m->header;
  EXPECT_EQ(h.version, 1);
  EXPECT_EQ(h.data_type, 0);
  EXPECT_TRUE(h.v);
  EXPECT_EQ(h.prf_func, 0);
  EXPECT_EQ(h.csb_id, 0xCD177E50u);
  EXPECT_EQ(h.cs_count, 1);
  EXPECT_EQ(h.cs_id_map_type, 0);
  ASSERT_EQ(h.srtp_map.size(), 1u);
  EXPECT_EQ(h.srtp_map[0], (SrtpIdEntry{0, 0, 0}));
  ASSERT_EQ(m->payloads.size(), 5u);
  const auto& t = std::get<TPayload>(m->payloads[0]);
  EXPECT_EQ(t.ts_type, 0);
  EXPECT_EQ(t.value, 0xC8E350EA00000000ull);
  EXPECT_EQ(HexEncode(std::get<RandPayload>(m->payloads[1]).rand), "4a28da979ee21a7651a0d7f19136d98c");
  const auto& id = std::get<IdPayload>(m->payloads[2]);
  EXPECT_EQ(id.id_type, 0);
  EXPECT_EQ(std::string(id.data.begin(), id.data.end()), "donald@duck.com");
  const auto& sp = std::get<SpPayload>(m->payloads[3]);
  EXPECT_EQ(sp.policy_no, 0);
  EXPECT_EQ(sp.prot_type, 0);
  EXPECT_TRUE(sp.params.empty());
  const auto& kemac = std::get<KemacPayload>(m->payloads[4]);
  EXPECT_EQ(kemac.encr_alg, 1);
  EXPECT_EQ(kemac.encr_data.size(), 36u);
  EXPECT_EQ(kemac.mac_alg, 1);
  EXPECT_EQ(HexEncode(kemac.mac), "5f627a69c6508675f5f59050e4abcca4c0bfdcd5");
  EXPECT_EQ(MustEncode(*m), bytes);
}

TEST(MikeyKnownAnswer, Rfc4567PskRespMessage) {
  const Bytes bytes = FromB64(samples::kRfc4567PskRespB64);
  ASSERT_EQ(bytes.size(), 71u);
  auto m = Decode(bytes);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->header.data_type, 1);
  ASSERT_EQ(m->payloads.size(), 3u);
  const auto& id = std::get<IdPayload>(m->payloads[1]);
  EXPECT_EQ(id.id_type, 0);  // NAI
  EXPECT_EQ(std::string(id.data.begin(), id.data.end()), "mickey@mouse.com");
  const auto& v = std::get<VPayload>(m->payloads[2]);
  EXPECT_EQ(v.auth_alg, 1);
  EXPECT_EQ(HexEncode(v.mac), "9fc1dd184e413035c522e18481afbad80818e5c7");
  EXPECT_EQ(MustEncode(*m), bytes);
}

TEST(MikeyKnownAnswer, HandAssembledRequestInitPsk) {
  // Assembled by hand from RFC 6043 §6 layouts: HDR (REQUEST_INIT_PSK, V=1,
  // PRF-HMAC-SHA-256, CSB 0x01020304, #CS 0, Empty map), T (NTP-UTC), RANDRi
  // (16 bytes), IDRi (URI "sip:a@x"), TP (MIKEY base ticket, PRF 1, flags
  // D E F G H N O, TP Data = first payload IDR, IDRr "sip:b@x"), V (HMAC-SHA-256).
  const std::string hex =
      "01 0b 05 81 01020304 00 01"
      "0f 00 0102030405060708"
      "0e 01 10 00112233445566778899aabbccddeeff"
      "10 01 01 0007 7369703a614078"
      "09 0001 01 01 03 f0 60 000d 0e 00 02 01 0007 7369703a624078"
      "00 02" + std::string(64, 'a');
  const Bytes bytes = FromHex(hex);
  auto m = Decode(bytes);
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  EXPECT_EQ(m->header.data_type, 11);
  EXPECT_TRUE(m->header.v);
  EXPECT_EQ(m->header.prf_func, 1);
  const auto& randr = std::get<RandrPayload>(m->payloads[1]);
  EXPECT_EQ(randr.role, 1);
  const auto& idr = std::get<IdrPayload>(m->payloads[2]);
  EXPECT_EQ(idr.role, 1);
  EXPECT_EQ(idr.id_type, 1);
  const auto& tp = std::get<TpPayload>(m->payloads[3]).policy;
  EXPECT_EQ(tp.ticket_type, 1);
  EXPECT_EQ(tp.prf_func, 1);
  EXPECT_EQ(tp.flags, kFlagD | kFlagE | kFlagF | kFlagG | kFlagH | kFlagN | kFlagO);
  ASSERT_EQ(tp.tp_data.size(), 1u);
  EXPECT_EQ(std::get<IdrPayload>(tp.tp_data[0]).role, 2);
  EXPECT_EQ(std::get<VPayload>(m->payloads[4]).mac.size(), 32u);
  EXPECT_EQ(MustEncode(*m), bytes);
}

// ---------------------------------------------------------------------------
// Samples: round trips, committed vectors, truncations, mutations

class Samples : public ::testing::TestWithParam<samples::Sample> {};

TEST_P(Samples, RoundTrip) {
  const Bytes bytes = MustEncode(GetParam().message);
  auto decoded = Decode(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  EXPECT_EQ(*decoded, GetParam().message);
  EXPECT_EQ(MustEncode(*decoded), bytes);
}

TEST_P(Samples, MatchesCommittedVector) {
  // tests/vectors/mikey/<name>.b64 holds the encoding; TKMS_UPDATE_VECTORS=1 rewrites it.
  const Bytes bytes = MustEncode(GetParam().message);
  const std::string path =
      std::string(TKMS_SOURCE_DIR) + "/tests/vectors/mikey/" + GetParam().name + ".b64";
  if (std::getenv("TKMS_UPDATE_VECTORS") != nullptr) {
    std::ofstream(path) << Base64Encode(bytes) << "\n";
  }
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(StripWhitespace(text.str()), Base64Encode(bytes)) << path;
}

TEST_P(Samples, EveryTruncationIsRejected) {
  const Bytes bytes = MustEncode(GetParam().message);
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = Decode(ByteSpan(bytes).first(n));
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
    EXPECT_TRUE(r.error().rule == Rule::kTruncated || r.error().rule == Rule::kTpData)
        << n << ": " << r.error().ToString();
    EXPECT_LE(r.error().offset, n);
  }
}

TEST_P(Samples, TrailingByteIsRejected) {
  Bytes bytes = MustEncode(GetParam().message);
  bytes.push_back(0);
  const CodecError e = ExpectRule(bytes, Rule::kTrailingBytes);
  EXPECT_EQ(e.offset, bytes.size() - 1);
}

TEST_P(Samples, EveryByteMutationFailsOrStaysCanonical) {
  // Flipping any bit either makes the message invalid or yields another
  // message that encodes back to exactly the mutated bytes.
  const Bytes original = MustEncode(GetParam().message);
  for (size_t i = 0; i < original.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xFF}) {
      Bytes bytes = original;
      bytes[i] ^= mask;
      auto r = Decode(bytes);
      if (!r.ok()) {
        EXPECT_LE(r.error().offset, bytes.size());
        continue;
      }
      auto again = Encode(*r);
      ASSERT_TRUE(again.ok()) << again.error().ToString();
      ASSERT_EQ(*again, bytes) << "byte " << i << " mask " << int(mask);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, Samples, ::testing::ValuesIn(samples::All()),
                         [](const auto& param_info) { return param_info.param.name; });

// ---------------------------------------------------------------------------
// One negative test per rule

class Negative : public ::testing::Test {
 protected:
  Bytes request_ = MustEncode(samples::RequestInitPsk());
  Bytes resolve_resp_ = MustEncode(samples::ResolveResp());
  Bytes transfer_ = MustEncode(samples::TransferInit());
  Bytes pk_ = MustEncode(samples::PkInitRfc3830());
  Bytes dh_ = MustEncode(samples::DhInitRfc3830());
  Bytes error_ = MustEncode(samples::ErrorMessage());
};

TEST_F(Negative, Version) {
  request_[0] = 2;
  EXPECT_EQ(ExpectRule(request_, Rule::kVersion).offset, 0u);
}

TEST_F(Negative, DataType) {
  request_[1] = 19;
  const CodecError e = ExpectRule(request_, Rule::kDataType);
  EXPECT_EQ(e.offset, 1u);
  EXPECT_EQ(e.error_no(), ErrorNo::kInvalidDt);
}

TEST_F(Negative, PrfFunc) {
  request_[3] = 0x85;
  EXPECT_EQ(ExpectRule(request_, Rule::kPrfFunc).error_no(), ErrorNo::kInvalidPrf);
}

TEST_F(Negative, CsIdMapType) {
  request_[9] = 3;
  EXPECT_EQ(ExpectRule(request_, Rule::kCsIdMapType).offset, 9u);
}

TEST_F(Negative, GenericIdSessionDataMustMatchSFlag) {
  // First GENERIC-ID block at offset 10: CS ID, Prot, S|#P ... set S=1 with 4-byte session data.
  transfer_[12] |= 0x80;
  ExpectRule(transfer_, Rule::kCsIdMap);
}

TEST_F(Negative, GenericIdDuplicateCsId) {
  Message m = samples::TransferInit();
  m.header.generic_map[1].cs_id = m.header.generic_map[0].cs_id;
  EXPECT_FALSE(Encode(m).ok());
  Bytes bytes = transfer_;
  // Second block starts after the first: 10 + 3 + 1 (policy) + 2 + 4 + 1.
  bytes[10 + 11] = bytes[10];
  ExpectRule(bytes, Rule::kCsIdMap);
}

TEST_F(Negative, UnknownPayloadType) {
  request_[2] = 19;  // HDR next payload: unassigned
  const CodecError e = ExpectRule(request_, Rule::kUnknownPayload);
  EXPECT_EQ(e.offset, 10u);
  // Malformed is 12 (RFC 3830 Table 6.12); 13 (RFC 4738) is only for a
  // supported message type the receiver does not serve.
  EXPECT_EQ(e.error_no(), ErrorNo::kUnspecified);
}

TEST_F(Negative, KeyDataOutsideKemacIsMisplaced) {
  request_[2] = 20;
  ExpectRule(request_, Rule::kMisplacedPayload);
}

TEST_F(Negative, EncrAlg) {
  const size_t at = PayloadOffset(resolve_resp_, PayloadType::kKemac);
  resolve_resp_[at + 1] = 9;
  const CodecError e = ExpectRule(resolve_resp_, Rule::kEncrAlg);
  EXPECT_EQ(e.offset, at + 1);
  EXPECT_EQ(e.error_no(), ErrorNo::kInvalidEa);
}

TEST_F(Negative, MacAlg) {
  const size_t at = PayloadOffset(request_, PayloadType::kV);
  request_[at + 1] = 7;
  EXPECT_EQ(ExpectRule(request_, Rule::kMacAlg).error_no(), ErrorNo::kInvalidMac);
}

TEST_F(Negative, MacAlgChangesLengthSoMessageNoLongerFits) {
  const size_t at = PayloadOffset(request_, PayloadType::kV);
  request_[at + 1] = 1;  // HMAC-SHA-1: 20 bytes instead of 32
  ExpectRule(request_, Rule::kTrailingBytes);
}

TEST_F(Negative, TsType) {
  request_[11] = 9;
  EXPECT_EQ(ExpectRule(request_, Rule::kTsType).error_no(), ErrorNo::kInvalidTs);
}

TEST_F(Negative, IdRoleAndType) {
  const size_t at = PayloadOffset(request_, PayloadType::kIdr);
  Bytes role = request_;
  role[at + 1] = 0;
  EXPECT_EQ(ExpectRule(role, Rule::kIdRole).error_no(), ErrorNo::kInvalidId);
  Bytes type = request_;
  type[at + 2] = 3;
  ExpectRule(type, Rule::kIdType);
}

TEST_F(Negative, RandRoleAndLength) {
  const size_t at = PayloadOffset(request_, PayloadType::kRandr);
  Bytes role = request_;
  role[at + 1] = 4;
  ExpectRule(role, Rule::kRandRole);
  Bytes len = request_;
  len[at + 2] = 0;
  ExpectRule(len, Rule::kRandLength);
}

TEST_F(Negative, CertType) {
  pk_[PayloadOffset(pk_, PayloadType::kCert) + 1] = 4;
  EXPECT_EQ(ExpectRule(pk_, Rule::kCertType).error_no(), ErrorNo::kInvalidCert);
}

TEST_F(Negative, HashFunc) {
  pk_[PayloadOffset(pk_, PayloadType::kChash) + 1] = 3;
  EXPECT_EQ(ExpectRule(pk_, Rule::kHashFunc).error_no(), ErrorNo::kInvalidHa);
}

TEST_F(Negative, PkeCache) {
  pk_[PayloadOffset(pk_, PayloadType::kPke) + 1] |= 0xC0;
  ExpectRule(pk_, Rule::kPkeCache);
}

TEST_F(Negative, SignType) {
  pk_[PayloadOffset(pk_, PayloadType::kSign)] |= 0xF0;
  ExpectRule(pk_, Rule::kSignType);
}

TEST_F(Negative, DhGroupAndReservedBits) {
  const size_t at = PayloadOffset(dh_, PayloadType::kDh);
  Bytes group = dh_;
  group[at + 1] = 3;
  EXPECT_EQ(ExpectRule(group, Rule::kDhGroup).error_no(), ErrorNo::kInvalidDh);
  Bytes reserved = dh_;
  reserved[at + 2 + 96] |= 0x10;
  ExpectRule(reserved, Rule::kReservedBits);
  Bytes kv = dh_;
  kv[at + 2 + 96] = 0x03;
  ExpectRule(kv, Rule::kKvType);
}

TEST_F(Negative, ErrNumberAndReserved) {
  const size_t at = PayloadOffset(error_, PayloadType::kErr);
  Bytes number = error_;
  number[at + 1] = 16;
  ExpectRule(number, Rule::kErrorNo);
  Bytes reserved = error_;
  reserved[at + 3] = 1;
  ExpectRule(reserved, Rule::kReservedBits);
}

TEST_F(Negative, GeneralExtType) {
  dh_[PayloadOffset(dh_, PayloadType::kGeneralExt) + 1] = 6;
  ExpectRule(dh_, Rule::kGeneralExtType);
}

TEST_F(Negative, SpProtTypeAndParam) {
  const size_t at = PayloadOffset(transfer_, PayloadType::kSp);
  Bytes prot = transfer_;
  prot[at + 2] = 1;
  EXPECT_EQ(ExpectRule(prot, Rule::kProtType).error_no(), ErrorNo::kInvalidSp);
  Bytes param = transfer_;
  param[at + 5] = 21;  // first parameter's type
  EXPECT_EQ(ExpectRule(param, Rule::kSpParam).error_no(), ErrorNo::kInvalidSpPar);
}

TEST_F(Negative, SakkeParams) {
  Bytes sakke = MustEncode(samples::SakkeMessage());
  sakke[PayloadOffset(sakke, PayloadType::kSakke) + 1] = 2;
  ExpectRule(sakke, Rule::kSakkeParams);
}

TEST_F(Negative, TicketType) {
  const size_t at = PayloadOffset(request_, PayloadType::kTp);
  Bytes type = request_;
  type[at + 2] = 3;
  EXPECT_EQ(ExpectRule(type, Rule::kTicketType).error_no(), ErrorNo::kInvalidTicket);
  Bytes subtype = request_;
  subtype[at + 3] = 2;
  ExpectRule(subtype, Rule::kTicketType);
}

TEST_F(Negative, TicketReservedBitsAndFlags) {
  const size_t at = PayloadOffset(request_, PayloadType::kTp);
  Bytes res = request_;
  res[at + 7] |= 0x01;
  ExpectRule(res, Rule::kTicketFlags);
  Bytes flags = request_;
  flags[at + 6] &= static_cast<uint8_t>(~0x40);  // clear F while G is set: "G implies F"
  const CodecError e = ExpectRule(flags, Rule::kTicketFlags);
  EXPECT_NE(e.detail.find("G implies F"), std::string::npos) << e.detail;
  EXPECT_EQ(e.error_no(), ErrorNo::kInvalidTpPar);
}

TEST_F(Negative, TpDataPayloads) {
  const size_t at = PayloadOffset(request_, PayloadType::kTp);
  Bytes first = request_;
  first[at + 10] = static_cast<uint8_t>(PayloadType::kRand);  // TP Data First Payload
  ExpectRule(first, Rule::kTpData);
  // Order inside TP Data: IDRkms must come before IDRi.
  Message m = samples::RequestInitPsk();
  auto& tp = std::get<TpPayload>(m.payloads[4]).policy;
  std::swap(tp.tp_data[0], tp.tp_data[1]);
  ExpectRule(MustEncode(m), Rule::kTpData);
  // At least one IDRr.
  Message no_responder = samples::RequestInitPsk();
  std::get<TpPayload>(no_responder.payloads[4]).policy.tp_data.pop_back();
  ExpectRule(MustEncode(no_responder), Rule::kTpData);
}

TEST_F(Negative, RequestedKeysMustBeAKeyDataChain) {
  Message m = samples::RequestInitPsk();
  auto& tp = std::get<TpPayload>(m.payloads[4]).policy;
  auto& kemac = std::get<KemacPayload>(tp.tp_data[4]);
  kemac.encr_data[1] = 0x11;  // TGK+SALT without its salt fields
  const CodecError e = ExpectRule(MustEncode(m), Rule::kTpData);
  EXPECT_NE(e.detail.find("Key data chain"), std::string::npos) << e.detail;
}

TEST_F(Negative, GrantedPolicyMustNotCarryKemac) {
  Message m = samples::RequestResp();
  auto& ticket = std::get<TicketPayload>(m.payloads[2]);
  ticket.policy.tp_data.insert(ticket.policy.tp_data.end() - 1, KemacPayload{});
  ExpectRule(MustEncode(m), Rule::kTpData);
}

TEST_F(Negative, BaseTicketData) {
  Message m = samples::TransferInit();
  auto& ticket = std::get<TicketPayload>(m.payloads[5]);
  Bytes bytes = MustEncode(m);
  // Find the THDR's next-payload byte: it follows the Ticket Data length field.
  const Bytes td = ticket.ticket_data;
  auto pos = std::search(bytes.begin(), bytes.end(), td.begin(), td.end());
  ASSERT_NE(pos, bytes.end());
  *pos = static_cast<uint8_t>(PayloadType::kRand);  // THDR must be followed by T
  // Malformed Ticket Data is malformed (12); 14 means "Ticket Type not
  // supported" (RFC 6043 Table 6.14).
  EXPECT_EQ(ExpectRule(bytes, Rule::kTicketData).error_no(), ErrorNo::kUnspecified);
  // A 3GPP ticket (type 2) carries opaque Ticket Data.
  ticket.policy.ticket_type = 2;
  ticket.policy.subtype = 0;
  ticket.policy.version = 0;
  ticket.ticket_data = {1, 2, 3};
  EXPECT_TRUE(Decode(MustEncode(m)).ok());
}

TEST_F(Negative, InitiatorData) {
  Message forked = samples::TransferInitForked();
  Bytes bytes = MustEncode(forked);
  Bytes bad_first = bytes;
  const size_t first_at = bytes.size() - 34 /*V*/ - 34 /*Vr*/ - 34 /*Vi*/ - 1;
  ASSERT_EQ(bad_first[first_at], static_cast<uint8_t>(PayloadType::kV));
  bad_first[first_at] = static_cast<uint8_t>(PayloadType::kT);
  ExpectRule(bad_first, Rule::kInitiatorData);
  // Forking without Initiator Data in TRANSFER_INIT.
  std::get<TicketPayload>(forked.payloads[5]).initiator_data.reset();
  ExpectRule(MustEncode(forked), Rule::kInitiatorData);
  // Initiator Data without forking.
  Message plain = samples::TransferInit();
  std::get<TicketPayload>(plain.payloads[5]).initiator_data = InitiatorData{
      VPayload{2, Bytes(32, 1)}, VPayload{2, Bytes(32, 2)}};
  ExpectRule(MustEncode(plain), Rule::kInitiatorData);
}

TEST_F(Negative, CompositionMissingV) {
  Message m = samples::RequestInitPsk();
  m.payloads.pop_back();
  const CodecError e = ExpectRule(MustEncode(m), Rule::kComposition);
  EXPECT_NE(e.detail.find("REQUEST_INIT_PSK"), std::string::npos) << e.detail;
  EXPECT_NE(e.detail.find("RFC 6043"), std::string::npos) << e.detail;
}

TEST_F(Negative, CompositionWrongOrder) {
  Message m = samples::RequestInitPsk();
  std::swap(m.payloads[0], m.payloads[1]);  // RANDRi before T
  const Bytes bytes = MustEncode(m);
  const CodecError e = ExpectRule(bytes, Rule::kComposition);
  EXPECT_EQ(e.offset, 10u) << e.ToString();
}

TEST_F(Negative, CompositionWrongRole) {
  Message m = samples::RequestInitPsk();
  std::get<RandrPayload>(m.payloads[1]).role = static_cast<uint8_t>(RandRole::kResponder);
  ExpectRule(MustEncode(m), Rule::kComposition);
}

TEST_F(Negative, CompositionExtraPayload) {
  Message m = samples::ResolveResp();
  m.payloads.insert(m.payloads.begin() + 1, RandPayload{Bytes(16, 1)});
  ExpectRule(MustEncode(m), Rule::kComposition);
}

TEST_F(Negative, HeaderRulesForTicketExchanges) {
  Message m = samples::RequestInitPsk();
  m.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kSrtpId);
  m.header.srtp_map = {{0, 1, 0}};
  m.header.cs_count = 1;
  ExpectRule(MustEncode(m), Rule::kHeader);
  Message t = samples::TransferInit();
  t.header.generic_map.clear();
  t.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kSrtpId);
  t.header.srtp_map = {{0, 1, 0}};
  t.header.cs_count = 1;
  ExpectRule(MustEncode(t), Rule::kHeader);
}

TEST_F(Negative, Limits) {
  DecodeOptions small;
  small.limits.max_message_bytes = request_.size() - 1;
  auto too_big = Decode(request_, small);
  ASSERT_FALSE(too_big.ok());
  EXPECT_EQ(too_big.error().rule, Rule::kMessageTooLarge);
  DecodeOptions few;
  few.limits.max_payloads = 3;
  auto too_many = Decode(request_, few);
  ASSERT_FALSE(too_many.ok());
  EXPECT_EQ(too_many.error().rule, Rule::kTooManyPayloads);
}

TEST_F(Negative, ErrorTextNamesRuleOffsetAndMikeyError) {
  request_[1] = 99;
  auto r = Decode(request_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().ToString(),
            "offset 1: hdr.data_type: data type 99 is not defined (MIKEY error 11, Invalid DT)");
}

// ---------------------------------------------------------------------------
// Encoder refusals

TEST(Encode, RefusesWhatWouldNotDecode) {
  Message m = samples::RequestInitPsk();
  std::get<VPayload>(m.payloads.back()).mac.pop_back();
  auto r = Encode(m);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().rule, Rule::kMacLength);

  Message cs = samples::TransferInit();
  cs.header.cs_count = 3;
  EXPECT_EQ(Encode(cs).error().rule, Rule::kCsIdMap);

  Message sign = samples::PkInitRfc3830();
  std::swap(sign.payloads[6], sign.payloads[7]);
  EXPECT_EQ(Encode(sign).error().rule, Rule::kMisplacedPayload);

  Message rand = samples::PskInitRfc3830();
  std::get<RandPayload>(rand.payloads[1]).rand.clear();
  EXPECT_EQ(Encode(rand).error().rule, Rule::kRandLength);

  Message ts = samples::DhInitRfc3830();
  std::get<TPayload>(ts.payloads[0]).value = 0x100000000ull;  // COUNTER is 32 bits
  EXPECT_EQ(Encode(ts).error().rule, Rule::kFieldTooLong);

  Message id = samples::RequestInitPsk();
  std::get<IdrPayload>(id.payloads[2]).data.assign(70000, 'x');
  EXPECT_EQ(Encode(id).error().rule, Rule::kFieldTooLong);
}

// ---------------------------------------------------------------------------
// Key data chains and base tickets

TEST(KeyData, RoundTripWithSaltAndValidity) {
  std::vector<KeyDataPayload> keys(3);
  keys[0].key_type = static_cast<uint8_t>(KeyType::kMpk);
  keys[0].key = SecretBytes(32, 0x11);
  keys[0].kv.kv_type = static_cast<uint8_t>(KvType::kSpi);
  keys[0].kv.spi = {0x01};
  keys[1].key_type = static_cast<uint8_t>(KeyType::kTgkSalt);
  keys[1].key = SecretBytes(16, 0x22);
  keys[1].salt = SecretBytes(14, 0x33);
  keys[1].kv.kv_type = static_cast<uint8_t>(KvType::kSpi);
  keys[1].kv.spi = {0x02};
  keys[2].key_type = static_cast<uint8_t>(KeyType::kTek);
  keys[2].key = SecretBytes(16, 0x44);
  keys[2].kv.kv_type = static_cast<uint8_t>(KvType::kInterval);
  keys[2].kv.valid_from = Bytes(6, 0);
  keys[2].kv.valid_to = Bytes(6, 0xFF);
  auto plain = EncodeKeyDataChain(keys);
  ASSERT_TRUE(plain.ok()) << plain.error().ToString();
  // First sub-payload by hand: next=20, type MPK(6)/KV SPI(1), len 32, key, SPI len 1, SPI.
  EXPECT_EQ(HexEncode(ByteSpan(*plain).first(4)), "14610020");
  auto back = DecodeKeyDataChain(*plain);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, keys);
  for (size_t n = 1; n < plain->size(); ++n) {
    EXPECT_FALSE(DecodeKeyDataChain(ByteSpan(*plain).first(n)).ok()) << n;
  }
}

TEST(KeyData, Rejections) {
  EXPECT_EQ(DecodeKeyDataChain(Bytes{0x00, 0x70, 0x00, 0x00}).error().rule, Rule::kKeyType);
  EXPECT_EQ(DecodeKeyDataChain(Bytes{0x00, 0x03, 0x00, 0x00}).error().rule, Rule::kKvType);
  EXPECT_EQ(DecodeKeyDataChain(Bytes{0x05, 0x00, 0x00, 0x00}).error().rule, Rule::kKeyData);
  EXPECT_EQ(DecodeKeyDataChain(Bytes{0x00, 0x00, 0x00, 0x00, 0x00}).error().rule,
            Rule::kTrailingBytes);
  KeyDataPayload salted;
  salted.key_type = static_cast<uint8_t>(KeyType::kTekSalt);
  salted.key = SecretBytes(16, 1);
  EXPECT_EQ(EncodeKeyDataChain({salted}).error().rule, Rule::kKeyData);
}

TEST(BaseTicket, RoundTripAndRejections) {
  const Message resp = samples::RequestResp();
  const auto& ticket = std::get<TicketPayload>(resp.payloads[2]);
  auto base = DecodeBaseTicketData(ticket.ticket_data);
  ASSERT_TRUE(base.ok()) << base.error().ToString();
  EXPECT_EQ(base->thdr.data, (Bytes{0x00, 0x01}));
  ASSERT_TRUE(base->idr_psk.has_value());
  auto again = EncodeBaseTicketData(*base);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, ticket.ticket_data);
  BaseTicketData wrong_role = *base;
  wrong_role.idr_psk->role = static_cast<uint8_t>(IdRole::kKms);
  EXPECT_EQ(EncodeBaseTicketData(wrong_role).error().rule, Rule::kTicketData);
}

// ---------------------------------------------------------------------------
// Composition helpers

TEST(Composition, DescribesEachTicketMessage) {
  EXPECT_EQ(CompositionOf(11), "HDR, T, RANDRi, [IDRi], [IDRkms], TP, [IDRpsk], {GENERAL_EXT}, V");
  EXPECT_EQ(CompositionOf(18),
            "HDR, T, [IDRkms], KEMAC, [IDRr], [RANDRkms], {GENERAL_EXT}, V");
  EXPECT_NE(CompositionOf(14).find(" | "), std::string::npos);
  EXPECT_EQ(CompositionOf(99), "");
}

TEST(Composition, CsbUpdateTransferInitIsAccepted) {
  Message m = samples::TransferInit();
  m.payloads.erase(m.payloads.begin() + 5);  // no TICKET
  m.payloads.erase(m.payloads.begin() + 1);  // no RANDRi
  EXPECT_TRUE(Decode(MustEncode(m)).ok());
}

TEST(Composition, TicketFlagDependencies) {
  const uint16_t base = kFlagD | kFlagE | kFlagF | kFlagG | kFlagH;
  EXPECT_TRUE(CheckTicketFlags(base).ok());
  EXPECT_FALSE(CheckTicketFlags(base & ~kFlagD).ok());                     // ¬D ⇒ L
  EXPECT_TRUE(CheckTicketFlags((base & ~kFlagD) | kFlagL).ok());
  EXPECT_FALSE(CheckTicketFlags(base & ~kFlagF).ok());                     // G ⇒ F
  EXPECT_FALSE(CheckTicketFlags(base & ~(kFlagG | kFlagH)).ok());          // ¬G ⇒ H
  EXPECT_TRUE(CheckTicketFlags(base & ~kFlagG).ok());
  EXPECT_FALSE(CheckTicketFlags((base & ~kFlagE) | kFlagI).ok());          // I ⇒ E
  EXPECT_FALSE(CheckTicketFlags((base & ~kFlagD) | kFlagL | kFlagK).ok()); // K ⇒ D
  EXPECT_FALSE(CheckTicketFlags((base & ~(kFlagF | kFlagG)) | kFlagM).ok());  // M ⇒ F
}

}  // namespace
}  // namespace tkms::mikey
