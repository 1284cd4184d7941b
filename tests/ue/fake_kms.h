// A hand-written "KMS side" for the UE tests: verifies REQUEST_INIT_PSK and
// RESOLVE_INIT_PSK with independently assembled PRF labels and MAC inputs
// (RFC 6043 §5.1.2, §5.5), and answers with REQUEST_RESP / RESOLVE_RESP /
// Error messages sealed with crypto::SealKemac and crypto::SealWithV, with
// switches that break one rule at a time.
//
// Why: the UE library must be tested against a peer that is not itself; this
// one shares only the codec and the crypto primitives (PRF, HMAC, AES-CM), and
// writes the labels and the identities appended to the MAC out by hand, so a
// wrong reading in tools/ue/ticket_client.cpp shows up as a test failure.
#pragma once

#include <gtest/gtest.h>

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "firmware/base/byte_writer.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/kemac_cipher.h"
#include "firmware/mikey/crypto/prf.h"
#include "firmware/mikey/crypto/protect.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "firmware/mikey/coverage.h"

namespace tkms::ue::testing {

using mikey::Bytes;
namespace crypto = mikey::crypto;

inline Bytes Text(const std::string& s) { return Bytes(s.begin(), s.end()); }

inline Bytes Filled(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed * 29 + i * 11 + 1);
  return b;
}

// Opaque but well-formed base ticket Ticket Data (RFC 6043 Appendix A; the
// codec checks its structure, the UE never opens it).
inline Bytes OpaqueBaseTicketData() {
  mikey::BaseTicketData d;
  d.thdr.data = {0x00, 0x01};
  d.t = mikey::TPayload{0, 0xEB3F2A2080000000ull};
  d.rand.rand = Filled(32, 9);
  d.kemac.encr_alg = static_cast<uint8_t>(mikey::EncrAlg::kAesCm256);
  d.kemac.encr_data = Filled(60, 10);
  d.v = mikey::VPayload{2, Filled(32, 11)};
  auto encoded = mikey::EncodeBaseTicketData(d);
  return encoded.ok() ? *encoded : Bytes{};
}

// RFC 6043 §5.1.2 label, written out: const || 0xFF || CSB ID || dir ||
// L8 || RANDRi || L8 || RANDRr.
inline Bytes MessageLabel(uint32_t constant, uint32_t csb_id, uint8_t direction, const Bytes& randri,
                          const Bytes& randrr) {
  ByteWriter w;
  w.U32(constant).U8(0xFF).U32(csb_id).U8(direction);
  w.U8(static_cast<uint8_t>(randri.size())).Bytes(randri);
  w.U8(static_cast<uint8_t>(randrr.size())).Bytes(randrr);
  return w.Take();
}

// RFC 3830 §4.1.4, Table 4.1.4: keys from an envelope / pre-shared key.
inline constexpr uint32_t kAuthConstant = 0x2D22AC75;
inline constexpr uint32_t kEncrConstant = 0x150533E1;
inline constexpr uint32_t kSaltConstant = 0x29B88916;

// The KEMAC of a response (direction 0x02) from `inkey` with the labels and
// key lengths written out: encr_key of 16 (AES-CM-128) or 32 (AES-CM-256)
// bytes, a 112-bit salt_key (RFC 3830 §4.2.3), the IV from the CSB ID and T.
inline mikey::KemacPayload HandKemac(crypto::CryptoProvider& provider, const SecretBytes& inkey, uint32_t csb_id,
                                     const Bytes& randri, const Bytes& randrr, uint8_t encr_alg, uint8_t key_alg,
                                     uint64_t ts64, const std::vector<mikey::KeyDataPayload>& keys) {
  mikey::KemacPayload kemac;
  kemac.encr_alg = encr_alg;
  kemac.mac_alg = static_cast<uint8_t>(mikey::MacAlg::kNull);
  auto chain = mikey::EncodeKeyDataChain(keys);
  EXPECT_TRUE(chain.ok());
  if (!chain.ok()) return kemac;
  const size_t key_bytes = key_alg == static_cast<uint8_t>(mikey::EncrAlg::kAesCm256) ? 32 : 16;
  auto in = crypto::TransientCryptoProvider::MakeKey(inkey);
  auto encr_key = crypto::Prf(provider, mikey::PrfFunc::kHmacSha256, *in,
                              MessageLabel(kEncrConstant, csb_id, 0x02, randri, randrr), key_bytes);
  auto salt_key = crypto::Prf(provider, mikey::PrfFunc::kHmacSha256, *in,
                              MessageLabel(kSaltConstant, csb_id, 0x02, randri, randrr), 14);
  EXPECT_TRUE(encr_key.ok() && salt_key.ok());
  if (!encr_key.ok() || !salt_key.ok()) return kemac;
  auto encrypted = crypto::KemacEncrypt(provider, static_cast<mikey::EncrAlg>(key_alg),
                                        *crypto::TransientCryptoProvider::MakeKey(*encr_key), *salt_key, csb_id,
                                        ts64, *chain);
  EXPECT_TRUE(encrypted.ok());
  if (encrypted.ok()) kemac.encr_data = std::move(*encrypted);
  return kemac;
}

// HMAC-SHA-256 auth_key (32 bytes) for the V payload, PRF-HMAC-SHA-256.
inline SecretBytes AuthKey(crypto::CryptoProvider& provider, const SecretBytes& inkey, uint32_t csb_id,
                           uint8_t direction, const Bytes& randri, const Bytes& randrr) {
  auto key = crypto::TransientCryptoProvider::MakeKey(inkey);
  auto out = crypto::Prf(provider, mikey::PrfFunc::kHmacSha256, *key,
                         MessageLabel(kAuthConstant, csb_id, direction, randri, randrr), 32);
  EXPECT_TRUE(out.ok());
  return out.ok() ? *out : SecretBytes();
}

inline Bytes HmacSha256(crypto::CryptoProvider& provider, const SecretBytes& key,
                        const std::vector<ByteSpan>& parts) {
  auto k = crypto::TransientCryptoProvider::MakeKey(key);
  Bytes out(32);
  EXPECT_TRUE(provider.Hmac(crypto::HashAlg::kSha256, *k, parts, out).ok());
  return out;
}

struct KmsBehaviour {
  uint64_t response_ts = 0xEB3F2A2080000000ull;  // a fresh KMS timestamp
  std::optional<uint32_t> csb_id;                // answer for another CSB
  std::optional<uint8_t> data_type;              // answer with another data type
  std::optional<Bytes> kms_identity;             // IDRkms to send (default: the KMS's own)
  bool send_idrkms = true;
  uint16_t add_flags = 0;                        // e.g. K
  // The KEMAC's algorithm: AES-CM-128, the mandatory one (RFC 3830 §4.2.3),
  // as a KMS answers by default; AES-CM-256 (RFC 6043 §6.2) where allowed.
  uint8_t encr_alg = static_cast<uint8_t>(mikey::EncrAlg::kAesCm128);
  // Derive the KEMAC's encr_key / salt_key by hand (RFC 3830 Table 4.1.4 labels
  // written out, the key length of `kemac_key_alg` or else `encr_alg`) and
  // encrypt with KemacEncrypt (known-answer tested in tests/crypto), instead
  // of crypto::DeriveMessageKeys + SealKemac, which the UE uses too.
  bool kemac_by_hand = false;
  std::optional<uint8_t> kemac_key_alg;          // (by hand) encrypt with another algorithm's key length
  bool iv_from_request_t = false;                // KEMAC IV with the request's T
  bool with_spi = true;
  bool session_key_first = false;                // wrong key order
  bool omit_mpkr = false;                        // forking without the second MPK
  bool omit_randrkms = false;                    // forking RESOLVE_RESP without RANDRkms
  bool rand_in_randri_slot = false;              // RESOLVE keys with RANDRr as RANDRi (wrong reading)
};

class FakeKms {
 public:
  explicit FakeKms(crypto::CryptoProvider& provider) : provider_(provider) {}

  SecretBytes psk_i = ToSecret(Filled(32, 1));
  SecretBytes psk_r = ToSecret(Filled(32, 2));
  Bytes id_i = Text("sip:alice@example.org");
  Bytes id_r = Text("sip:bob@example.org");
  Bytes id_kms = Text("kms.example.org");
  SecretBytes mpki = ToSecret(Filled(32, 3));
  SecretBytes mpkr = ToSecret(Filled(32, 4));
  SecretBytes tgk = ToSecret(Filled(16, 5));
  Bytes randrkms = Filled(32, 6);
  mikey::TicketPolicy last_granted;

  // Checks the V of a REQUEST_INIT_PSK by hand: auth_key from the PSK with
  // label(0x01, RANDRi, -), MAC over the message minus MAC || Identity_i ||
  // Identity_kms.
  bool RequestVerifies(const Bytes& request, const Bytes& identity_i) {
    auto m = mikey::Decode(request);
    if (!m.ok()) return false;
    const auto& randri = std::get<mikey::RandrPayload>(m->payloads[1]).rand;
    const SecretBytes auth = AuthKey(provider_, psk_i, m->header.csb_id, 0x01, randri, {});
    const ByteSpan body(request.data(), request.size() - 32);
    const Bytes mac = HmacSha256(provider_, auth, {body, identity_i, id_kms});
    return Bytes(request.end() - 32, request.end()) == mac;
  }

  // RESOLVE_INIT_PSK by hand: label(0x01, -, RANDRr), Identity_r || Identity_kms.
  bool ResolveVerifies(const Bytes& resolve, const Bytes& identity_r) {
    auto m = mikey::Decode(resolve);
    if (!m.ok()) return false;
    const auto& randrr = std::get<mikey::RandrPayload>(m->payloads[1]).rand;
    const SecretBytes auth = AuthKey(provider_, psk_r, m->header.csb_id, 0x01, {}, randrr);
    const ByteSpan body(resolve.data(), resolve.size() - 32);
    const Bytes mac = HmacSha256(provider_, auth, {body, identity_r, id_kms});
    return Bytes(resolve.end() - 32, resolve.end()) == mac;
  }

  Bytes AnswerRequest(const Bytes& request, const KmsBehaviour& b = {}) {
    auto req = mikey::Decode(request);
    EXPECT_TRUE(req.ok()) << req.error().ToString();
    if (!req.ok()) return {};
    EXPECT_TRUE(RequestVerifies(request, id_i));
    const auto& randri = std::get<mikey::RandrPayload>(req->payloads[1]).rand;
    const auto& req_t = std::get<mikey::TPayload>(req->payloads[0]);
    mikey::TicketPolicy policy;
    for (const auto& p : req->payloads) {
      if (const auto* tp = std::get_if<mikey::TpPayload>(&p)) policy = tp->policy;
    }
    // Granted policy: the desired one without its KEMAC.
    std::vector<mikey::TpDataPayload> granted_data;
    for (auto& d : policy.tp_data) {
      if (!std::holds_alternative<mikey::KemacPayload>(d)) granted_data.push_back(d);
    }
    policy.tp_data = granted_data;
    policy.flags = static_cast<uint16_t>(policy.flags | b.add_flags);
    {
      std::lock_guard<std::mutex> lock(mutex_);  // answers may run on several server threads
      last_granted = policy;
    }
    const bool forking = (policy.flags & mikey::kFlagI) != 0;

    mikey::Message m;
    m.header = req->header;
    m.header.data_type = b.data_type.value_or(static_cast<uint8_t>(mikey::DataType::kRequestResp));
    m.header.v = false;
    if (b.csb_id) m.header.csb_id = *b.csb_id;
    const mikey::TPayload t{static_cast<uint8_t>(mikey::TsType::kNtpUtc), b.response_ts};
    m.payloads.emplace_back(t);
    if (b.send_idrkms) {
      m.payloads.emplace_back(mikey::IdrPayload{3, 1, b.kms_identity.value_or(id_kms)});
    }
    const bool as_resolve_resp =
        m.header.data_type == static_cast<uint8_t>(mikey::DataType::kResolveResp);
    if (!as_resolve_resp) {
      mikey::TicketPayload ticket;
      ticket.policy = policy;
      ticket.ticket_data = OpaqueBaseTicketData();
      m.payloads.emplace_back(ticket);
    }
    std::vector<mikey::KeyDataPayload> keys;
    keys.push_back(KeyData(mikey::KeyType::kMpk, mpki, {0x01}, b.with_spi));
    if (forking && !b.omit_mpkr) keys.push_back(KeyData(mikey::KeyType::kMpk, mpkr, {0x02}, b.with_spi));
    auto session = KeyData(mikey::KeyType::kTgk, tgk, {0x03}, b.with_spi);
    if (b.session_key_first) keys.insert(keys.begin(), std::move(session));
    else keys.push_back(std::move(session));
    auto resp_keys = crypto::DeriveMessageKeys(provider_, mikey::PrfFunc::kHmacSha256, *Key(psk_i),
                                               crypto::Direction::kResponse, req->header.csb_id,
                                               ByteSpan(randri), std::nullopt,
                                               static_cast<mikey::EncrAlg>(b.encr_alg),
                                               mikey::MacAlg::kHmacSha256_256);
    EXPECT_TRUE(resp_keys.ok());
    const uint64_t iv_t = b.iv_from_request_t ? req_t.value : t.value;
    if (b.kemac_by_hand) {
      m.payloads.emplace_back(HandKemac(provider_, psk_i, req->header.csb_id, randri, {}, b.encr_alg,
                                        b.kemac_key_alg.value_or(b.encr_alg), iv_t, keys));
    } else {
      auto kemac = crypto::SealKemac(provider_, static_cast<mikey::EncrAlg>(b.encr_alg), *resp_keys,
                                     m.header.csb_id, iv_t, keys);
      EXPECT_TRUE(kemac.ok());
      m.payloads.emplace_back(*kemac);
    }
    m.payloads.emplace_back(mikey::VPayload{2, {}});
    auto auth = crypto::TransientCryptoProvider::MakeKey(resp_keys->auth_key);
    const ByteSpan initial[] = {request};
    auto sealed = crypto::SealWithV(provider_, m, *auth, initial);
    EXPECT_TRUE(sealed.ok()) << sealed.error().ToString();
    return sealed.ok() ? *sealed : Bytes{};
  }

  Bytes AnswerResolve(const Bytes& resolve, const KmsBehaviour& b = {}) {
    auto req = mikey::Decode(resolve);
    EXPECT_TRUE(req.ok()) << req.error().ToString();
    if (!req.ok()) return {};
    EXPECT_TRUE(ResolveVerifies(resolve, id_r));
    const auto& randrr = std::get<mikey::RandrPayload>(req->payloads[1]).rand;
    const mikey::TicketPayload* ticket = nullptr;
    for (const auto& p : req->payloads) {
      if (const auto* x = std::get_if<mikey::TicketPayload>(&p)) ticket = x;
    }
    EXPECT_NE(ticket, nullptr);
    if (ticket == nullptr) return {};
    const bool forking = (ticket->policy.flags & mikey::kFlagI) != 0;
    if (forking) {
      // RFC 6043 §4.2.3.4: the KMS verifies Vr with a key from MPKr.
      EXPECT_TRUE(ticket->initiator_data.has_value());
      auto vr_key = crypto::DeriveInitiatorDataAuthKey(provider_, mikey::PrfFunc::kHmacSha256, *Key(mpkr),
                                                       mikey::MacAlg::kHmacSha256_256);
      EXPECT_TRUE(vr_key.ok());
      auto input = mikey::InitiatorDataMacInput(*ticket->initiator_data);
      EXPECT_TRUE(input.ok());
      EXPECT_EQ(HmacSha256(provider_, *vr_key, {*input}), ticket->initiator_data->vr.mac);
    }
    mikey::Message m;
    m.header = req->header;
    m.header.data_type = b.data_type.value_or(static_cast<uint8_t>(mikey::DataType::kResolveResp));
    m.header.v = false;
    if (b.csb_id) m.header.csb_id = *b.csb_id;
    const mikey::TPayload t{static_cast<uint8_t>(mikey::TsType::kNtpUtc), b.response_ts};
    m.payloads.emplace_back(t);
    if (b.send_idrkms) m.payloads.emplace_back(mikey::IdrPayload{3, 1, b.kms_identity.value_or(id_kms)});
    std::vector<mikey::KeyDataPayload> keys;
    keys.push_back(KeyData(mikey::KeyType::kMpk, mpki, {0x01}, b.with_spi));
    SecretBytes session = tgk;
    if (forking) {
      auto mpkr_forked = crypto::DeriveForkedKey(provider_, mikey::PrfFunc::kHmacSha256, *Key(mpkr),
                                                 crypto::ForkedKeyType::kMpkr, id_r, randrkms);
      auto tgk_forked = crypto::DeriveForkedKey(provider_, mikey::PrfFunc::kHmacSha256, *Key(tgk),
                                                crypto::ForkedKeyType::kTgk, id_r, randrkms);
      EXPECT_TRUE(mpkr_forked.ok() && tgk_forked.ok());
      if (!b.omit_mpkr) keys.push_back(KeyData(mikey::KeyType::kMpk, *mpkr_forked, {0x02}, b.with_spi));
      session = *tgk_forked;
    }
    auto session_key = KeyData(mikey::KeyType::kTgk, session, {0x03}, b.with_spi);
    if (b.session_key_first) keys.insert(keys.begin(), std::move(session_key));
    else keys.push_back(std::move(session_key));
    const std::optional<ByteSpan> ri =
        b.rand_in_randri_slot ? std::optional<ByteSpan>(ByteSpan(randrr)) : std::nullopt;
    const std::optional<ByteSpan> rr =
        b.rand_in_randri_slot ? std::nullopt : std::optional<ByteSpan>(ByteSpan(randrr));
    auto resp_keys = crypto::DeriveMessageKeys(provider_, mikey::PrfFunc::kHmacSha256, *Key(psk_r),
                                               crypto::Direction::kResponse, req->header.csb_id, ri, rr,
                                               static_cast<mikey::EncrAlg>(b.encr_alg),
                                               mikey::MacAlg::kHmacSha256_256);
    EXPECT_TRUE(resp_keys.ok());
    if (b.kemac_by_hand) {
      const Bytes none;
      m.payloads.emplace_back(HandKemac(provider_, psk_r, req->header.csb_id, b.rand_in_randri_slot ? randrr : none,
                                        b.rand_in_randri_slot ? none : randrr, b.encr_alg,
                                        b.kemac_key_alg.value_or(b.encr_alg), t.value, keys));
    } else {
      auto kemac = crypto::SealKemac(provider_, static_cast<mikey::EncrAlg>(b.encr_alg), *resp_keys,
                                     m.header.csb_id, t.value, keys);
      EXPECT_TRUE(kemac.ok());
      m.payloads.emplace_back(*kemac);
    }
    if (forking) {
      m.payloads.emplace_back(mikey::IdrPayload{2, 1, id_r});
      if (!b.omit_randrkms) m.payloads.emplace_back(mikey::RandrPayload{3, randrkms});
    }
    m.payloads.emplace_back(mikey::VPayload{2, {}});
    auto auth = crypto::TransientCryptoProvider::MakeKey(resp_keys->auth_key);
    const ByteSpan initial[] = {resolve};
    auto sealed = crypto::SealWithV(provider_, m, *auth, initial);
    EXPECT_TRUE(sealed.ok()) << sealed.error().ToString();
    return sealed.ok() ? *sealed : Bytes{};
  }

  // An Error message answering `initial` (RFC 6043 §5.4): HDR copied, fresh
  // T, ERR; with a V keyed like the initial message's (auth_key given) or a
  // wrong one.
  Bytes Error(const Bytes& initial, uint8_t error_no, const SecretBytes* auth_key) {
    auto req = mikey::Decode(initial);
    mikey::Message m;
    if (req.ok()) m.header = req->header;
    m.header.data_type = static_cast<uint8_t>(mikey::DataType::kError);
    m.header.v = false;
    m.payloads.emplace_back(mikey::TPayload{0, 0xEB3F2A3000000000ull});
    m.payloads.emplace_back(mikey::ErrPayload{error_no});
    if (auth_key == nullptr) {
      auto encoded = mikey::Encode(m);
      return encoded.ok() ? *encoded : Bytes{};
    }
    m.payloads.emplace_back(mikey::VPayload{2, {}});
    auto key = crypto::TransientCryptoProvider::MakeKey(*auth_key);
    auto sealed = crypto::SealWithV(provider_, m, *key, {});
    return sealed.ok() ? *sealed : Bytes{};
  }

  // The REQUEST_INIT's auth_key, as the KMS derives it.
  SecretBytes RequestAuthKey(const Bytes& request) {
    auto m = mikey::Decode(request);
    const auto& randri = std::get<mikey::RandrPayload>(m->payloads[1]).rand;
    return AuthKey(provider_, psk_i, m->header.csb_id, 0x01, randri, {});
  }

  static crypto::SecretKeyPtr Key(const SecretBytes& bytes) {
    return crypto::TransientCryptoProvider::MakeKey(bytes);
  }

 private:
  static mikey::KeyDataPayload KeyData(mikey::KeyType type, const SecretBytes& key, Bytes spi, bool with_spi) {
    mikey::KeyDataPayload k;
    k.key_type = static_cast<uint8_t>(type);
    k.key = key;
    if (with_spi) {
      k.kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
      k.kv.spi = std::move(spi);
    }
    return k;
  }

  crypto::CryptoProvider& provider_;
  std::mutex mutex_;
};

}  // namespace tkms::ue::testing
