// Whole-message protection: a REQUEST_INIT_PSK / REQUEST_RESP exchange sealed
// and verified with RFC 6043 §5.1.2 message keys over the §5.5 coverage, and a
// KEMAC carried through AES-CM-256. The exchange is committed as
// tests/vectors/crypto/exchange.txt, which exchange_check.py re-verifies with
// Python's hmac/hashlib and the openssl command (ctest crypto_exchange_check).
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "firmware/base/encoding.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/protect.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/support/mikey_samples.h"

namespace tkms::mikey::crypto {
namespace {

Bytes Fixed(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed * 31 + i * 13);
  return b;
}

Bytes Text(const char* s) { return Bytes(s, s + std::char_traits<char>::length(s)); }

struct Exchange {
  Bytes psk = Fixed(32, 1);
  Bytes id_i = Text("sip:alice@example.org");
  Bytes id_kms = Text("kms.example.org");
  Bytes request;
  Bytes response;
  Bytes kemac_plaintext;
  Bytes kemac_ciphertext;
  std::vector<KeyDataPayload> keys;
};

class Protect : public ::testing::Test {
 protected:
  Exchange Build() {
    Exchange x;
    auto psk = TransientCryptoProvider::MakeKey(x.psk);
    // REQUEST_INIT_PSK: auth key from the PSK, initial direction, RANDRi.
    const Message req = samples::RequestInitPsk();
    const auto& randri = std::get<RandrPayload>(req.payloads[1]).rand;
    auto init_keys = DeriveMessageKeys(provider_, PrfFunc::kHmacSha256, *psk, Direction::kInitial,
                                       req.header.csb_id, ByteSpan(randri), std::nullopt,
                                       EncrAlg::kNull, MacAlg::kHmacSha256_256);
    EXPECT_TRUE(init_keys.ok());
    auto auth_i = TransientCryptoProvider::MakeKey(init_keys->auth_key);
    const ByteSpan ids[] = {x.id_i, x.id_kms};
    auto sealed = SealWithV(provider_, req, *auth_i, ids);
    EXPECT_TRUE(sealed.ok()) << sealed.error().ToString();
    x.request = *sealed;

    // REQUEST_RESP: KEMAC (MPK, TGK+SALT) under the response keys; V over RESP || REQUEST_INIT.
    Message resp = samples::RequestResp();
    auto resp_keys = DeriveMessageKeys(provider_, PrfFunc::kHmacSha256, *psk, Direction::kResponse,
                                       resp.header.csb_id, ByteSpan(randri), std::nullopt,
                                       EncrAlg::kAesCm256, MacAlg::kHmacSha256_256);
    EXPECT_TRUE(resp_keys.ok());
    x.keys.resize(2);
    x.keys[0].key_type = static_cast<uint8_t>(KeyType::kMpk);
    x.keys[0].key = ToSecret(Fixed(32, 7));
    x.keys[0].kv.kv_type = static_cast<uint8_t>(KvType::kSpi);
    x.keys[0].kv.spi = {0x01};
    x.keys[1].key_type = static_cast<uint8_t>(KeyType::kTgkSalt);
    x.keys[1].key = ToSecret(Fixed(32, 8));
    x.keys[1].salt = ToSecret(Fixed(14, 9));
    x.keys[1].kv.kv_type = static_cast<uint8_t>(KvType::kSpi);
    x.keys[1].kv.spi = {0x02};
    const auto& t = std::get<TPayload>(resp.payloads[0]);
    auto kemac = SealKemac(provider_, EncrAlg::kAesCm256, *resp_keys, resp.header.csb_id, t.value, x.keys);
    EXPECT_TRUE(kemac.ok()) << kemac.error().ToString();
    resp.payloads[3] = *kemac;
    auto auth_r = TransientCryptoProvider::MakeKey(resp_keys->auth_key);
    const ByteSpan initial[] = {x.request};
    auto sealed_resp = SealWithV(provider_, resp, *auth_r, initial);
    EXPECT_TRUE(sealed_resp.ok());
    x.response = *sealed_resp;
    auto plain = EncodeKeyDataChain(x.keys);
    EXPECT_TRUE(plain.ok());
    x.kemac_plaintext.assign(plain->begin(), plain->end());
    x.kemac_ciphertext = kemac->encr_data;
    return x;
  }

  Status VerifyRequest(const Exchange& x, ByteSpan request, ByteSpan id_i) {
    std::vector<PayloadExtent> ext;
    auto m = Decode(request, {}, ext);
    if (!m.ok()) return InvalidArgument(m.error().ToString());
    auto psk = TransientCryptoProvider::MakeKey(x.psk);
    const auto& randri = std::get<RandrPayload>(m->payloads[1]).rand;
    auto keys = DeriveMessageKeys(provider_, PrfFunc::kHmacSha256, *psk, Direction::kInitial,
                                  m->header.csb_id, ByteSpan(randri), std::nullopt, EncrAlg::kNull,
                                  MacAlg::kHmacSha256_256);
    if (!keys.ok()) return keys.error();
    auto auth = TransientCryptoProvider::MakeKey(keys->auth_key);
    const ByteSpan ids[] = {id_i, x.id_kms};
    return VerifyV(provider_, request, *m, ext, *auth, ids);
  }

  TransientCryptoProvider provider_;
};

TEST_F(Protect, RequestVerifiesAndEveryAlterationFails) {
  const Exchange x = Build();
  ASSERT_TRUE(VerifyRequest(x, x.request, x.id_i).ok());
  // The identity the KMS appends must be the one the initiator used.
  const Bytes other = Text("sip:mallory@example.org");
  EXPECT_EQ(VerifyRequest(x, x.request, other).code(), StatusCode::kPermissionDenied);
  // Any bit flipped anywhere either breaks decoding or the MAC.
  for (size_t i = 0; i < x.request.size(); ++i) {
    Bytes bad = x.request;
    bad[i] ^= 0x04;
    EXPECT_FALSE(VerifyRequest(x, bad, x.id_i).ok()) << "byte " << i;
  }
  // A different PSK does not verify.
  Exchange wrong = x;
  wrong.psk[0] ^= 1;
  EXPECT_EQ(VerifyRequest(wrong, x.request, x.id_i).code(), StatusCode::kPermissionDenied);
}

TEST_F(Protect, ResponseKemacOpensWithTheResponseKeysOnly) {
  const Exchange x = Build();
  std::vector<PayloadExtent> ext;
  auto resp = Decode(x.response, {}, ext);
  ASSERT_TRUE(resp.ok()) << resp.error().ToString();
  auto psk = TransientCryptoProvider::MakeKey(x.psk);
  auto req = Decode(x.request);
  ASSERT_TRUE(req.ok());
  const auto& randri = std::get<RandrPayload>(req->payloads[1]).rand;
  auto keys = DeriveMessageKeys(provider_, PrfFunc::kHmacSha256, *psk, Direction::kResponse,
                                resp->header.csb_id, ByteSpan(randri), std::nullopt,
                                EncrAlg::kAesCm256, MacAlg::kHmacSha256_256);
  ASSERT_TRUE(keys.ok());
  auto auth = TransientCryptoProvider::MakeKey(keys->auth_key);
  const ByteSpan initial[] = {x.request};
  EXPECT_TRUE(VerifyV(provider_, x.response, *resp, ext, *auth, initial).ok());
  const auto& kemac = std::get<KemacPayload>(resp->payloads[3]);
  const uint64_t ts = std::get<TPayload>(resp->payloads[0]).value;
  auto opened = OpenKemac(provider_, kemac, *keys, resp->header.csb_id, ts);
  ASSERT_TRUE(opened.ok()) << opened.error().ToString();
  EXPECT_EQ(*opened, x.keys);
  // The initial-direction keys (or another timestamp) do not open it.
  auto wrong = DeriveMessageKeys(provider_, PrfFunc::kHmacSha256, *psk, Direction::kInitial,
                                 resp->header.csb_id, ByteSpan(randri), std::nullopt,
                                 EncrAlg::kAesCm256, MacAlg::kHmacSha256_256);
  ASSERT_TRUE(wrong.ok());
  auto garbage = OpenKemac(provider_, kemac, *wrong, resp->header.csb_id, ts);
  EXPECT_FALSE(garbage.ok() && *garbage == x.keys);
  auto shifted = OpenKemac(provider_, kemac, *keys, resp->header.csb_id, ts + 1);
  EXPECT_FALSE(shifted.ok() && *shifted == x.keys);
}

TEST_F(Protect, SealRefusesMessagesWithoutV) {
  auto key = TransientCryptoProvider::MakeKey(Fixed(32, 2));
  Message m = samples::PkInitRfc3830();
  EXPECT_EQ(SealWithV(provider_, m, *key, {}).error().code(), StatusCode::kInvalidArgument);
  Message null_mac = samples::RequestInitPsk();
  std::get<VPayload>(null_mac.payloads.back()).auth_alg = 0;
  EXPECT_EQ(SealWithV(provider_, null_mac, *key, {}).error().code(), StatusCode::kInvalidArgument);
}

TEST_F(Protect, MatchesCommittedExchangeVector) {
  // tests/vectors/crypto/exchange.txt; TKMS_UPDATE_VECTORS=1 rewrites it.
  const Exchange x = Build();
  const Message req = samples::RequestInitPsk();
  const Message resp = samples::RequestResp();
  std::ostringstream text;
  text << "# REQUEST_INIT_PSK / REQUEST_RESP sealed by tkms (tests/crypto/protect_test.cpp);\n"
       << "# tests/crypto/exchange_check.py re-verifies every MAC and the KEMAC independently.\n"
       << "prf = 1\n"
       << "psk = " << HexEncode(x.psk) << "\n"
       << "csb_id = " << req.header.csb_id << "\n"
       << "randri = " << HexEncode(std::get<RandrPayload>(req.payloads[1]).rand) << "\n"
       << "id_i = " << HexEncode(x.id_i) << "\n"
       << "id_kms = " << HexEncode(x.id_kms) << "\n"
       << "request = " << HexEncode(x.request) << "\n"
       << "response = " << HexEncode(x.response) << "\n"
       << "response_ts = " << HexEncode(Bytes{0xEB, 0x3F, 0x2A, 0x10, 0x80, 0, 0, 0}) << "\n"
       << "kemac_plaintext = " << HexEncode(x.kemac_plaintext) << "\n"
       << "kemac_ciphertext = " << HexEncode(x.kemac_ciphertext) << "\n";
  EXPECT_EQ(std::get<TPayload>(resp.payloads[0]).value, 0xEB3F2A1080000000ull);
  const std::string path = std::string(TKMS_SOURCE_DIR) + "/tests/vectors/crypto/exchange.txt";
  if (std::getenv("TKMS_UPDATE_VECTORS") != nullptr) std::ofstream(path) << text.str();
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  std::stringstream committed;
  committed << in.rdbuf();
  EXPECT_EQ(committed.str(), text.str());
}

}  // namespace
}  // namespace tkms::mikey::crypto
