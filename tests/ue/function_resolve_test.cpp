// A network function's unprotected resolve on Zk (tools/ue/function_resolve.h;
// TR 33.828 step 5, TS 33.328 B.2.2.3 steps 6 and 10): the RESOLVE_INIT_PSK
// against bytes written out by hand here (RFC 3830 §6, RFC 6043 §6), the
// RESOLVE_RESP parsed from bytes written out by hand (not by the codec), and
// every refusal: V with a MAC, an encrypted or MACed KEMAC, IDRkms wrong or
// missing, another CSB ID, forked keys, truncation, Error with and without V.
// Also the Annex A round trip through KmsClient::FunctionResolve.
#include "tools/ue/function_resolve.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "firmware/base/byte_writer.h"
#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/ue/fake_kms.h"
#include "tests/ue/test_http_server.h"
#include "tools/ue/kms_client.h"

namespace tkms::ue {
namespace {

using mikey::Bytes;
using testing::HttpOk;
using testing::ServerReply;
using testing::ServerRequest;
using testing::TestHttpServer;
using testing::Text;

Bytes Seq(size_t n, uint8_t first) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(first + i);
  return b;
}

constexpr uint32_t kCsbId = 0x0A0B0C0D;
constexpr uint64_t kRequestT = 0xEB3F2A2080000000ull;
constexpr uint64_t kResponseT = 0xEB3F2A2180000000ull;
const std::string kKms = "kms.a.example.org";

// Payload type numbers (RFC 3830 Table 6.1, RFC 6043 Table 6.1).
constexpr uint8_t kLast = 0, kKemac = 1, kT = 5, kV = 9, kErr = 12, kIdr = 14, kRandr = 15, kTicket = 17,
                  kKeyData = 20;

// The ticket as a TRANSFER_INIT carries it: a policy naming the initiator
// and one responder, opaque Ticket Data.
mikey::TicketPayload Ticket(bool forking) {
  mikey::TicketPayload t;
  t.policy.ticket_type = 1;
  t.policy.subtype = 1;
  t.policy.version = 1;
  t.policy.prf_func = 1;
  t.policy.flags = mikey::kFlagD | mikey::kFlagE | mikey::kFlagF | mikey::kFlagH | mikey::kFlagO |
                   (forking ? mikey::kFlagI : 0);
  t.policy.tp_data.emplace_back(mikey::IdrPayload{1, 1, Text("sip:alice@a.example.org")});
  t.policy.tp_data.emplace_back(mikey::IdrPayload{2, 1, Text("sip:bob@b.example.org")});
  t.ticket_data = testing::OpaqueBaseTicketData();  // opaque to the network function
  if (forking) {
    t.initiator_data = mikey::InitiatorData{mikey::VPayload{2, Seq(32, 0x80)}, mikey::VPayload{2, Seq(32, 0xA0)}};
  }
  return t;
}

// HDR (RFC 3830 §6.1): version 1, data type, next payload, V | PRF func
// (HMAC-SHA-256 = 1), CSB ID, #CS 0, CS ID map type Empty (1).
void Hdr(ByteWriter& w, uint8_t data_type, uint8_t next, uint32_t csb_id = kCsbId) {
  w.U8(1).U8(data_type).U8(next).U8(0x01).U32(csb_id).U8(0).U8(1);
}
// T (§6.6): next, TS type NTP-UTC (0), 64-bit value.
void T(ByteWriter& w, uint8_t next, uint64_t value) { w.U8(next).U8(0).U64(value); }
// IDR (RFC 6043 §6.6): next, role, ID type URI (1), 16-bit length, data.
void Idr(ByteWriter& w, uint8_t next, uint8_t role, const std::string& id) {
  w.U8(next).U8(role).U8(1).U16(static_cast<uint16_t>(id.size())).Bytes(Text(id));
}
// Key data (RFC 3830 §6.13): next, type << 4 | KV type, 16-bit key length,
// key, [16-bit salt length, salt], KV SPI: 8-bit length, SPI.
void KeyData(ByteWriter& w, uint8_t next, uint8_t type, const Bytes& key, const Bytes& spi,
             const Bytes* salt = nullptr) {
  w.U8(next).U8(static_cast<uint8_t>(type << 4 | (spi.empty() ? 0 : 1))).U16(static_cast<uint16_t>(key.size()));
  w.Bytes(key);
  if (salt != nullptr) w.U16(static_cast<uint16_t>(salt->size())).Bytes(*salt);
  if (!spi.empty()) w.U8(static_cast<uint8_t>(spi.size())).Bytes(spi);
}

const Bytes kMpki = Seq(16, 0x10), kMpkr = Seq(16, 0x20), kTgk = Seq(16, 0x30), kTek = Seq(16, 0x40),
            kSalt = Seq(14, 0x50);

// What a hand-written answer may differ in.
struct Resp {
  bool forking = false;
  uint8_t data_type = 18;  // RESOLVE_RESP
  uint32_t csb_id = kCsbId;
  std::optional<std::string> kms = kKms;
  uint8_t kemac_encr = 0, kemac_mac = 0;
  uint8_t v_alg = 0;
  bool with_spi = true;
  bool omit_mpkr = false;
  bool randrkms = false;
};

// The unprotected RESOLVE_RESP of the contract, byte by byte.
Bytes HandResp(const Resp& r) {
  ByteWriter chain;
  const Bytes spi1 = r.with_spi ? Bytes{0x01} : Bytes{}, spi2 = r.with_spi ? Bytes{0x02} : Bytes{},
              spi3 = r.with_spi ? Bytes{0x03} : Bytes{}, spi4 = r.with_spi ? Bytes{0x04} : Bytes{};
  KeyData(chain, kKeyData, 6, kMpki, spi1);                                    // MPKi
  if (r.forking && !r.omit_mpkr) KeyData(chain, kKeyData, 6, kMpkr, spi2);     // MPKr (unforked)
  KeyData(chain, kKeyData, 0, kTgk, spi3);                                     // TGK
  KeyData(chain, kLast, 3, kTek, spi4, &kSalt);                                // TEK+SALT
  const Bytes keys = chain.Take();

  ByteWriter w;
  Hdr(w, r.data_type, kT, r.csb_id);
  T(w, r.kms ? kIdr : kKemac, kResponseT);
  if (r.kms) Idr(w, kKemac, 3, *r.kms);
  // KEMAC (§6.2): next, encr alg, 16-bit length, encr data, MAC alg, MAC.
  w.U8(r.randrkms ? kIdr : kV).U8(r.kemac_encr).U16(static_cast<uint16_t>(keys.size())).Bytes(keys).U8(r.kemac_mac);
  if (r.kemac_mac == 2) w.Bytes(Seq(32, 0xC0));
  if (r.randrkms) {
    Idr(w, kRandr, 2, "sip:bob@b.example.org");
    w.U8(kV).U8(3).U8(16).Bytes(Seq(16, 0xD0));  // RANDR (RFC 6043 §6.13): next, role KMS, length, RAND
  }
  // V (§6.9): next (last), auth alg, MAC.
  w.U8(kLast).U8(r.v_alg);
  if (r.v_alg == 2) w.Bytes(Seq(32, 0xE0));
  return w.Take();
}

// An Error message (RFC 6043 §5.4): HDR, T, ERR, [V].
Bytes HandError(uint8_t error_no, std::optional<uint8_t> v_alg) {
  ByteWriter w;
  Hdr(w, 6, kT);
  T(w, kErr, kResponseT);
  w.U8(v_alg ? kV : kLast).U8(error_no).U16(0);  // ERR (§6.12): next, error no, reserved
  if (v_alg) {
    w.U8(kLast).U8(*v_alg);
    if (*v_alg == 2) w.Bytes(Seq(32, 0xE0));
  }
  return w.Take();
}

class FunctionResolveTest : public ::testing::Test {
 protected:
  FunctionResolveParams Params(bool forking) {
    FunctionResolveParams p;
    p.ticket = Ticket(forking);
    p.kms_identity = Text(kKms);
    p.csb_id = kCsbId;
    p.timestamp.value = kRequestT;
    p.randrr = Seq(16, 0x01);
    return p;
  }
  FunctionResolveInit Init(bool forking) {
    auto init = BuildFunctionResolveInit(provider_, Params(forking));
    EXPECT_TRUE(init.ok()) << init.error().ToString();
    return init.ok() ? *init : FunctionResolveInit{};
  }
  UeResult<FunctionResolvedKeys> Parse(const Bytes& resp, bool forking = false) {
    return ParseFunctionResolveResp(provider_, resp, Init(forking));
  }
  void ExpectRefused(const Resp& r, UeErrorKind kind, const std::string& text) {
    auto parsed = Parse(HandResp(r), r.forking);
    ASSERT_FALSE(parsed.ok());
    EXPECT_EQ(parsed.error().kind, kind) << parsed.error().ToString();
    EXPECT_NE(parsed.error().detail.find(text), std::string::npos) << parsed.error().ToString();
  }

  mikey::crypto::TransientCryptoProvider provider_;
};

TEST_F(FunctionResolveTest, RequestIsTheUnprotectedResolveInitByteForByte) {
  for (bool with_responder : {false, true}) {
    FunctionResolveParams p = Params(true);
    if (with_responder) p.responder = Text("sip:bob@b.example.org");
    auto init = BuildFunctionResolveInit(provider_, p);
    ASSERT_TRUE(init.ok()) << init.error().ToString();

    ByteWriter w;
    Hdr(w, 16, kT);  // RESOLVE_INIT_PSK, V flag 0
    T(w, kRandr, kRequestT);
    w.U8(kIdr).U8(2).U8(16).Bytes(Seq(16, 0x01));  // RANDRr: role Responder, 16 bytes
    if (with_responder) Idr(w, kIdr, 2, "sip:bob@b.example.org");
    Idr(w, kTicket, 3, kKms);
    auto ticket = mikey::EncodePayload(p.ticket, kV);  // the TICKET as received (opaque here)
    ASSERT_TRUE(ticket.ok());
    w.Bytes(*ticket);
    w.U8(kLast).U8(0);  // V: MAC NULL, no MAC bytes
    EXPECT_EQ(HexEncode(init->bytes), HexEncode(w.Take()));
    EXPECT_EQ(init->csb_id, kCsbId);
    EXPECT_TRUE(init->forking);
    // The strict codec reads it back (composition of RESOLVE_INIT_PSK).
    EXPECT_TRUE(mikey::Decode(init->bytes).ok());
  }
}

TEST_F(FunctionResolveTest, FreshRequestsDifferAndShortRandsAreRefused) {
  FunctionResolveParams p;
  p.ticket = Ticket(false);
  p.kms_identity = Text(kKms);
  auto a = BuildFunctionResolveInit(provider_, p);
  auto b = BuildFunctionResolveInit(provider_, p);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->randrr.size(), 16u);
  EXPECT_NE(a->randrr, b->randrr);
  p.randrr = Seq(15, 1);
  EXPECT_EQ(BuildFunctionResolveInit(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
  p.randrr.reset();
  p.kms_identity.clear();
  EXPECT_EQ(BuildFunctionResolveInit(provider_, p).error().kind, UeErrorKind::kInvalidArgument);
}

TEST_F(FunctionResolveTest, ParsesTheHandWrittenAnswer) {
  for (bool forking : {false, true}) {
    Resp r;
    r.forking = forking;
    auto keys = Parse(HandResp(r), forking);
    ASSERT_TRUE(keys.ok()) << keys.error().ToString();
    ASSERT_EQ(keys->mpk_keys.size(), forking ? 2u : 1u);
    EXPECT_EQ(Bytes(keys->mpk_keys[0].key.begin(), keys->mpk_keys[0].key.end()), kMpki);
    EXPECT_EQ(keys->mpk_keys[0].kv.spi, Bytes{0x01});
    if (forking) {
      EXPECT_EQ(Bytes(keys->mpk_keys[1].key.begin(), keys->mpk_keys[1].key.end()), kMpkr);
    }
    ASSERT_EQ(keys->session_keys.size(), 2u);
    EXPECT_EQ(keys->session_keys[0].key_type, 0);
    EXPECT_EQ(Bytes(keys->session_keys[0].key.begin(), keys->session_keys[0].key.end()), kTgk);
    EXPECT_EQ(keys->session_keys[1].key_type, 3);
    ASSERT_TRUE(keys->session_keys[1].salt.has_value());
    EXPECT_EQ(Bytes(keys->session_keys[1].salt->begin(), keys->session_keys[1].salt->end()), kSalt);
    EXPECT_EQ(keys->session_keys[1].kv.spi, Bytes{0x04});
    EXPECT_EQ(keys->kms_identity, Text(kKms));
    EXPECT_EQ(keys->kms_timestamp.value, kResponseT);
  }
  // The identity compares in the KMS user identity format (case of the host).
  Resp upper;
  upper.kms = "KMS.A.Example.ORG";
  EXPECT_TRUE(Parse(HandResp(upper)).ok());
}

TEST_F(FunctionResolveTest, RefusesAProtectedOrEncryptedAnswer) {
  Resp r;
  r.v_alg = 2;  // V with HMAC-SHA-256
  ExpectRefused(r, UeErrorKind::kVerification, "V with MAC NULL");
  r = Resp{};
  r.kemac_encr = 1;  // AES-CM-128: not the clear keys of Zk
  ExpectRefused(r, UeErrorKind::kVerification, "encryption NULL and MAC NULL");
  r = Resp{};
  r.kemac_mac = 2;
  ExpectRefused(r, UeErrorKind::kVerification, "encryption NULL and MAC NULL");
}

TEST_F(FunctionResolveTest, RefusesAnAnswerOfAnotherKmsOrCsb) {
  Resp r;
  r.kms = "kms.b.example.org";
  ExpectRefused(r, UeErrorKind::kVerification, "IDRkms");
  r = Resp{};
  r.kms.reset();
  ExpectRefused(r, UeErrorKind::kVerification, "lacks IDRkms");
  r = Resp{};
  r.csb_id = kCsbId + 1;
  ExpectRefused(r, UeErrorKind::kVerification, "CSB ID");
  r = Resp{};
  r.data_type = 2;  // REQUEST_RESP
  auto parsed = Parse(HandResp(r));
  ASSERT_FALSE(parsed.ok());  // the codec or the binding refuses it
}

TEST_F(FunctionResolveTest, RefusesForkedOrIncompleteKeys) {
  Resp r;
  r.forking = true;
  r.randrkms = true;
  ExpectRefused(r, UeErrorKind::kVerification, "forked keys");
  r = Resp{};
  r.forking = true;
  r.omit_mpkr = true;
  ExpectRefused(r, UeErrorKind::kVerification, "expected MPK");
  r = Resp{};
  r.with_spi = false;
  ExpectRefused(r, UeErrorKind::kVerification, "SPI");
}

TEST_F(FunctionResolveTest, RefusesEveryTruncation) {
  const Bytes full = HandResp(Resp{});
  for (size_t n = 0; n < full.size(); ++n) {
    auto parsed = Parse(Bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    EXPECT_FALSE(parsed.ok()) << n;
  }
  Bytes longer = full;
  longer.push_back(0);
  EXPECT_FALSE(Parse(longer).ok());
}

TEST_F(FunctionResolveTest, ErrorMessages) {
  auto refused = Parse(HandError(14, std::nullopt));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, UeErrorKind::kMikeyError);
  EXPECT_EQ(refused.error().mikey_error(), 14);
  EXPECT_NE(refused.error().detail.find("MIKEY error 14 (Invalid TICKET)"), std::string::npos)
      << refused.error().ToString();
  for (uint8_t alg : {0, 2}) {
    auto with_v = Parse(HandError(7, alg));
    ASSERT_FALSE(with_v.ok());
    EXPECT_EQ(with_v.error().kind, UeErrorKind::kVerification) << with_v.error().ToString();
    EXPECT_EQ(with_v.error().mikey_error(), 7);
    EXPECT_NE(with_v.error().detail.find("carries no V"), std::string::npos);
  }
}

TEST(KeyFingerprint, IsTheFirstEightBytesOfSha256) {
  mikey::KeyDataPayload k;
  k.key = ToSecret(Seq(16, 0));
  EXPECT_EQ(KeyFingerprint(k), "be45cb2605bf36be");  // SHA-256(00 01 .. 0f), Python hashlib
  k.salt = ToSecret(Seq(14, 16));
  EXPECT_EQ(KeyFingerprint(k), "f2192584b67da35d");  // SHA-256(00 .. 1d): key || salt
}

// The Annex A glue: an unprotected RESOLVE_INIT_PSK POSTed as ticketresolve,
// the answer checked; a 403 (no resolve role) stays an HTTP status.
TEST_F(FunctionResolveTest, KmsClientRoundTrip) {
  std::string seen_target;
  TestHttpServer server([&](const ServerRequest& req) {
    seen_target = req.target;
    auto body = Base64Decode(req.body);
    if (!body || body->size() < 8) return ServerReply{"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"};
    auto m = mikey::Decode(*body);
    EXPECT_TRUE(m.ok());
    if (m.ok()) {
      EXPECT_FALSE(m->header.v);
    }
    Resp r;
    Bytes answer = HandResp(r);
    // Answer for the request's CSB ID (bytes 4-7 of the HDR).
    for (int i = 0; i < 4; ++i) answer[4 + static_cast<size_t>(i)] = (*body)[4 + static_cast<size_t>(i)];
    return ServerReply{HttpOk(Base64Encode(answer), "application/mikey")};
  });
  auto http = web::client::HttpClient::FromUrl(server.url());
  ASSERT_TRUE(http.ok());
  KmsClient client(std::move(*http));
  FunctionResolveParams p = Params(false);
  p.csb_id.reset();
  auto keys = client.FunctionResolve(p);
  ASSERT_TRUE(keys.ok()) << keys.error().ToString();
  EXPECT_EQ(seen_target, "/keymanagement?requesttype=ticketresolve");
  EXPECT_EQ(keys->session_keys.size(), 2u);

  TestHttpServer forbidding([](const ServerRequest&) {
    return ServerReply{"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"};
  });
  auto http2 = web::client::HttpClient::FromUrl(forbidding.url());
  ASSERT_TRUE(http2.ok());
  KmsClient refused(std::move(*http2));
  auto r = refused.FunctionResolve(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kHttpStatus);
  EXPECT_EQ(r.error().http_status, 403);
}

}  // namespace
}  // namespace tkms::ue
