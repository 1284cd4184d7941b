// Internal to tkms_ue: the building blocks shared by the message builders and
// checkers (ticket_client.cpp, ticket_resolve.cpp, transfer.cpp,
// transfer_checks.cpp). Not part of the library's interface.
//
// Why: every UE message of RFC 6043 §4.2 opens the same way (CSB ID, T, own
// RAND: the MessageOpening), is sealed with a V payload over the RFC 6043 §5.5
// coverage, and every answer is decoded strictly and checked the same way
// (§4.2.1.5, §4.2.3.5: OpenResponse). One copy of each keeps the readings of
// ticket_client.h / transfer.h in one place.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "firmware/mikey/crypto/derivation.h"
#include "tools/ue/ticket_client.h"

namespace tkms::ue::internal {

namespace crypto = mikey::crypto;

// ---- errors ----------------------------------------------------------------------
UeError Err(UeErrorKind kind, std::string detail);
UeError Invalid(std::string detail);
UeError Verification(std::string detail);
// Provider and codec failures while building: the caller's inputs, or a fault.
UeError FromStatus(const Status& s, UeErrorKind otherwise = UeErrorKind::kInternal);
// A codec refusal of a received message: kBadResponse with the rule.
UeError Undecodable(const std::string& what, const mikey::CodecError& error);
// "TRANSFER_INIT (14)".
std::string Name(uint8_t data_type);

// ---- crypto ---------------------------------------------------------------------
UeResult<Bytes> RandomBytes(crypto::CryptoProvider& provider, size_t n);
UeResult<uint32_t> RandomU32(crypto::CryptoProvider& provider);
UeResult<crypto::SecretKeyPtr> Import(crypto::CryptoProvider& provider, ByteSpan bytes);
// RFC 6043 §5.1.2 message keys from `inkey` (PSK, MPKi or MPKr').
UeResult<crypto::MessageKeys> MessageKeysFrom(crypto::CryptoProvider& provider, ByteSpan inkey, uint8_t prf,
                                              crypto::Direction direction, uint32_t csb_id,
                                              std::optional<ByteSpan> randri, std::optional<ByteSpan> randrr,
                                              uint8_t encr_alg, uint8_t mac_alg);

// ---- finding payloads -----------------------------------------------------------
template <typename T>
const T* Find(const mikey::Message& m) {
  for (const auto& p : m.payloads) {
    if (const auto* x = std::get_if<T>(&p)) return x;
  }
  return nullptr;
}
const mikey::IdrPayload* FindIdr(const mikey::Message& m, mikey::IdRole role);
// Two identities (ID Data of IDR payloads) in the KMS user identity format
// (firmware/base/user_identity.h): the one comparison of identities.
bool SameIdentity(const Bytes& a, const Bytes& b);
const mikey::RandrPayload* FindRandr(const mikey::Message& m, mikey::RandRole role);

// ---- building ---------------------------------------------------------------------
Result<void, UeError> CheckAlgorithms(uint8_t prf_func, uint8_t mac_alg);
UeResult<mikey::TPayload> MakeTimestamp(const TimestampSpec& spec);
// The 64-bit T of a KEMAC IV (crypto::TimestampForIv).
UeResult<uint64_t> Ts64(const mikey::TPayload& t);
mikey::IdrPayload Idr(mikey::IdRole role, uint8_t id_type, const Bytes& data);
// HDR of a ticket exchange's initial message: #CS = 0, Empty map.
mikey::CommonHeader TicketHeader(mikey::DataType type, bool v, uint8_t prf, uint32_t csb_id);

// What every message a UE sends in a PSK exchange starts with: its CSB ID,
// its timestamp and its own RAND (RANDRi / RANDRr), each the caller's or a
// fresh one. `longest_key` is the longest key the RAND is used with (reading
// 4): a given RAND shorter than that is kInvalidArgument; a fresh one has
// RandLengthFor(max(longest_key, fresh_for_key)) bytes.
struct MessageOpening {
  uint32_t csb_id = 0;
  mikey::TPayload t;
  Bytes rand;
};
UeResult<MessageOpening> OpenMessage(crypto::CryptoProvider& provider, std::optional<uint32_t> csb_id,
                                     const TimestampSpec& timestamp, const std::optional<Bytes>& rand,
                                     size_t longest_key, size_t fresh_for_key, const char* rand_name);

// Seals `m` (last payload V) with `auth_key` over m || appended (RFC 6043
// §5.5); fills m's V MAC from the bytes.
UeResult<Bytes> Seal(crypto::CryptoProvider& provider, mikey::Message& m, const SecretBytes& auth_key,
                     std::span<const ByteSpan> appended);

// ---- answers of the KMS (REQUEST_RESP, RESOLVE_RESP) --------------------------------

// What checking a REQUEST_RESP / RESOLVE_RESP needs from its request.
struct ResponseContext {
  mikey::DataType expected;
  ByteSpan initial;  // the complete initial message
  const mikey::CommonHeader* initial_header;
  const SecretBytes* psk;
  std::optional<ByteSpan> randri;
  std::optional<ByteSpan> randrr;
  const Bytes* kms_identity;
  uint64_t request_ts64;
  const ResponseChecks* checks;
  ErrorAuthKey error_key;
};

// How an answer is bound to its request, whatever protects it: data type,
// the HDR fields copied from the request (§4.2.1.5, §4.2.3.5) and IDRkms (if
// present, or always with require_kms_identity: the unprotected RESOLVE_RESP
// of Zk, TS 33.328 B.2.2.3 step 10).
struct ResponseBinding {
  mikey::DataType expected;
  const mikey::CommonHeader* initial_header;
  const Bytes* kms_identity;  // empty: any IDRkms
  bool require_kms_identity = false;
};

struct DecodedResponse {
  mikey::Message message;  // T first, a KEMAC, V last
  std::vector<mikey::PayloadExtent> extents;
};

// A MIKEY Error message (data type 6 in the second byte): to ParseErrorMessage.
bool IsErrorMessage(ByteSpan bytes);
// Decodes an answer that is not an Error message (strict codec) and checks
// the binding above: kBadResponse if it does not decode, else kVerification.
UeResult<DecodedResponse> DecodeBoundResponse(ByteSpan bytes, const ResponseBinding& binding);

struct OpenedResponse {
  mikey::Message message;
  std::vector<mikey::KeyDataPayload> keys;
};

// Error messages, decoding, header binding, IDRkms, V over RESP || INIT,
// KEMAC decryption (readings 3, 6, 7, 8).
UeResult<OpenedResponse> OpenResponse(crypto::CryptoProvider& provider, ByteSpan bytes, const ResponseContext& ctx);

// Splits MPKi, [MPKr / MPKr'] from the session keys (reading 6).
Result<void, UeError> SplitKeys(std::vector<mikey::KeyDataPayload>& keys, size_t mpk_count, bool require_spi,
                                std::vector<mikey::KeyDataPayload>& mpks,
                                std::vector<mikey::KeyDataPayload>& sessions);

}  // namespace tkms::ue::internal
