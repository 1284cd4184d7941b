// The per-crypto-session SRTP keys of a completed Ticket Transfer (RFC 6043
// §5.1.3, RFC 3830 §4.1.3, RFC 3711 §8.2): transfer.h reading 16. Both sides
// call DeriveSrtpKeys on their own TransferSession; equal keys prove the
// exchange.
#include <algorithm>
#include <string>

#include "firmware/base/byte_reader.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/srtp_keys.h"
#include "tools/ue/transfer.h"
#include "tools/ue/ue_internal.h"

namespace tkms::ue {

using mikey::GenericIdEntry;
using mikey::KeyDataPayload;
namespace crypto = mikey::crypto;
using internal::FromStatus;
using internal::Import;
using internal::Invalid;

namespace {

constexpr uint8_t kProtSrtp = 0;  // RFC 3830 Table 6.10 Prot type

// The SSRC at the start of SRTP Session Data (RFC 3830 §6.1.1), read through ByteReader.
std::optional<uint32_t> SsrcOf(const GenericIdEntry& cs) {
  if (cs.prot_type != kProtSrtp) return std::nullopt;
  ByteReader r(cs.session_data);
  uint32_t ssrc = 0;
  if (!r.ReadU32(ssrc)) return std::nullopt;
  return ssrc;
}

bool Has(uint16_t flags, uint16_t flag) { return (flags & flag) != 0; }

}  // namespace

// ---- Per-CS SRTP keys ------------------------------------------------------------

UeResult<std::vector<SrtpSessionKeys>> DeriveSrtpKeys(crypto::CryptoProvider& provider,
                                                      const TransferSession& session) {
  if (!mikey::IsKnownPrf(session.prf_func)) return Invalid("unknown PRF func");
  if (session.session_keys.empty()) return Invalid("no session key (TEK / TGK / GTGK) in the bundle");
  const bool h = Has(session.ticket_flags, mikey::kFlagH);
  const bool g = Has(session.ticket_flags, mikey::kFlagG);
  if (g && !session.randrr) return Invalid("the G flag is set but the bundle has no RANDRr");
  const Bytes empty;
  std::vector<SrtpSessionKeys> out;
  for (const GenericIdEntry& cs : session.crypto_sessions) {
    const std::string name = "crypto session " + std::to_string(cs.cs_id);
    if (cs.prot_type != kProtSrtp) return Invalid(name + " is not SRTP");
    const KeyDataPayload* key = &session.session_keys.front();
    if (!cs.spi.empty()) {
      auto it = std::find_if(session.session_keys.begin(), session.session_keys.end(), [&](const KeyDataPayload& k) {
        return k.kv.kv_type == static_cast<uint8_t>(mikey::KvType::kSpi) && k.kv.spi == cs.spi;
      });
      if (it == session.session_keys.end()) return Invalid(name + " names an SPI that no session key carries");
      key = &*it;
    }
    SrtpSessionKeys k;
    k.cs_id = cs.cs_id;
    k.ssrc = SsrcOf(cs);
    const auto type = static_cast<mikey::KeyType>(key->key_type);
    if (type == mikey::KeyType::kTek || type == mikey::KeyType::kTekSalt) {
      // Reading 16: a delivered TEK is the master key.
      if (key->key.size() != kSrtpMasterKeyBytes) return Invalid(name + ": the TEK is not 16 bytes");
      if (!key->salt || key->salt->size() != crypto::kSrtpMasterSaltBytes) {
        return Invalid(name + ": a TEK without a 14-byte salt gives no SRTP master salt");
      }
      k.master_key = key->key;
      k.master_salt = *key->salt;
    } else {
      auto ctx = crypto::TicketTekContextFromFlags(cs.cs_id, h, g, session.randri,
                                                   session.randrr ? ByteSpan(*session.randrr) : ByteSpan(empty));
      if (!ctx.ok()) return FromStatus(ctx.error());
      auto tgk = Import(provider, key->key);
      if (!tgk.ok()) return std::move(tgk).error();
      std::optional<ByteSpan> salt;
      if (key->salt) salt = ByteSpan(*key->salt);
      auto master = crypto::DeriveSrtpMasterKeys(provider, static_cast<mikey::PrfFunc>(session.prf_func), **tgk,
                                                 *ctx, kSrtpMasterKeyBytes, salt);
      if (!master.ok()) return FromStatus(master.error());
      k.master_key = std::move(master->master_key);
      k.master_salt = std::move(master->master_salt);
    }
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace tkms::ue
