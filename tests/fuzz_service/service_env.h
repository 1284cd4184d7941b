// The fixed, deterministic world the service fuzz targets and their seed
// generator share: a Kms (firmware/kms/kms.h) over fake in-memory keys, a
// ManualClock at a fixed time, a snapshot with two users and a group, and the
// UE messages (tools/ue/ticket_client.h) that this KMS accepts.
//
// Why: a fuzz target must behave the same way on the same input, every run,
// so nothing here reads the real clock or an entropy source: the KMS's "token
// RNG" and the UE's RNG are counter-based fillers, and every UE message is
// built with explicit CSB IDs, RANDs and timestamps equal to the fixed time.
// The seed generator (seed_gen.cpp) and the targets build the same requests
// with the same code, so a REQUEST_RESP the generator records answers exactly
// the RequestInit that ue_response_fuzz checks it against.
//
// The world:
//   KMS identity  kms.example.org, ticket key id 1 (a fixed 32-byte key)
//   users         sip:alice@example.org (policy class "default": forking and
//                 reuse allowed) and sip:bob@example.org (class "strict": no
//                 forking, no reuse, one key, 600 s lifetime), each with a
//                 fixed 32-byte PSK and a 16-byte PSK id (token users)
//   group         sip:team@example.org = {alice, bob}
//   time          2027-01-15 08:00:00 UTC, timestamp window 60 s
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/kms/kms.h"
#include "firmware/kms/timestamps.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/support/hal_fakes.h"
#include "tools/ue/ticket_client.h"

namespace tkms::fuzz_service {

using mikey::Bytes;
namespace mc = mikey::crypto;

inline constexpr std::string_view kKmsIdentity = "kms.example.org";
inline constexpr std::string_view kAlice = "sip:alice@example.org";
inline constexpr std::string_view kBob = "sip:bob@example.org";
inline constexpr std::string_view kTeam = "sip:team@example.org";  // group {alice, bob}
inline constexpr uint32_t kTicketKeyId = 1;
// Zk clients (kms_zk_fuzz): a peer KMS (TS 33.328 B.2.2.3) and an authorised
// network function (TR 33.828), as the Zk listener names them; the CSB ID and
// PRF of the unprotected RESOLVE_INITs the seeds send, which the fixed
// PeerQuery of kms_zk_fuzz mode 0 expects in a RESOLVE_RESP.
inline constexpr std::string_view kPeerKms = "kms.b.example.org";
inline constexpr std::string_view kNetworkFunction = "li-gw-1";
inline constexpr uint32_t kZkCsbId = 0x2B2C2D2Eu;
inline constexpr uint8_t kZkPrf = 0;  // MIKEY-1

// The fixed time of the ManualClock and its NTP-UTC (64-bit) timestamp.
kms::TimePoint Now();
uint64_t NowNtp();

Bytes Text(std::string_view s);
const SecretBytes& AlicePsk();
const SecretBytes& BobPsk();
const Bytes& AlicePskId();
const Bytes& BobPskId();

// Fills `out` from a counter (splitmix64 of counter, counter + 1, ...).
void CounterFill(uint64_t& counter, std::span<uint8_t> out);

// KmsKeys held in memory: the two users' PSKs, ticket key 1, and a counter
// RNG that starts at 0 for every instance.
class FakeKeys final : public kms::KmsKeys {
 public:
  mc::CryptoProvider& provider() override;
  Result<mc::SecretKeyPtr> UserPsk(ByteSpan psk_id) override;
  Result<mc::SecretKeyPtr> DecoyPsk() override;
  Result<uint32_t> CurrentTicketKeyId() override { return kTicketKeyId; }
  Status Health() override { return Status(); }
  Result<mc::SecretKeyPtr> TicketKey(uint32_t key_id) override;
  Status Random(std::span<uint8_t> out) override;

 private:
  uint64_t counter_ = 0;
};

// A TransientCryptoProvider whose Random() is a counter (the UE side).
class CounterRandomProvider final : public mc::CryptoProvider {
 public:
  Result<mc::SecretKeyPtr> ImportTransientKey(ByteSpan bytes) override { return inner_.ImportTransientKey(bytes); }
  Result<mc::SecretKeyPtr> SliceKey(const mc::SecretKey& key, size_t offset, size_t len) override {
    return inner_.SliceKey(key, offset, len);
  }
  Status Hmac(mc::HashAlg alg, const mc::SecretKey& key, std::span<const ByteSpan> parts,
              std::span<uint8_t> out) override {
    return inner_.Hmac(alg, key, parts, out);
  }
  Status AesCtr(const mc::SecretKey& key, std::span<const uint8_t, 16> iv, ByteSpan in,
                std::span<uint8_t> out) override {
    return inner_.AesCtr(key, iv, in, out);
  }
  Status Random(std::span<uint8_t> out) override {
    CounterFill(counter_, out);
    return Status();
  }

 private:
  mc::TransientCryptoProvider inner_;
  uint64_t counter_ = 1u << 20;
};

// The configuration and users (built once; immutable).
std::shared_ptr<const kms::KmsSnapshot> Snapshot();

// A KMS in its initial state: empty replay cache, RNG counter at 0, clock at
// Now(). Cheap enough to make one per fuzz input.
class FreshKms {
 public:
  FreshKms();
  kms::KmsReply Handle(kms::RequestType type, ByteSpan mikey);
  // A ticketresolve on Zk from the client the listener mapped to `kind` / `name`.
  kms::KmsReply HandleZk(kms::ZkClientKind kind, std::string_view name, ByteSpan mikey);

 private:
  FakeKeys keys_;
  hal::ManualClock clock_;
  kms::Kms kms_;
};

// ---- the UE side ---------------------------------------------------------------

// A request by Alice for a ticket to Bob (plain or forking), with IDRi and
// IDRkms, HMAC-SHA-256, CSB ID and RANDRi fixed, T = NowNtp().
ue::RequestInitParams AliceRequestParams(bool forking);
// A resolve by Bob of `ticket`, with IDRr and IDRkms, T = NowNtp().
ue::ResolveInitParams BobResolveParams(const mikey::TicketPayload& ticket, uint32_t csb_id);

// The messages ue_response_fuzz checks answers against, built once: a plain
// and a forking REQUEST_INIT_PSK by Alice, and Bob's RESOLVE_INIT_PSK of each
// granted ticket (the forking one with the Initiator Data of a TRANSFER_INIT).
// Aborts if the fake KMS does not accept them (the world is broken).
struct FixedExchanges {
  ue::RequestInit plain_request;
  ue::RequestInit forking_request;
  ue::ResolveInit plain_resolve;
  ue::ResolveInit forking_resolve;
};
const FixedExchanges& Fixed();

// The UE's provider (counter RNG), shared by the targets.
mc::CryptoProvider& UeProvider();

// ---- re-sealing KMS answers (ue_response_fuzz "re-seal" mode) -----------------------

// What the UE knows about the request an answer is for.
struct AnswerContext {
  const Bytes* request = nullptr;            // the complete initial message
  const SecretBytes* psk = nullptr;
  std::optional<ByteSpan> randri;            // REQUEST: RANDRi
  std::optional<ByteSpan> randrr;            // RESOLVE: RANDRr
  const SecretBytes* request_auth_key = nullptr;  // keys the V of Error messages
};
AnswerContext ContextOf(const ue::RequestInit& request);
AnswerContext ContextOf(const ue::ResolveInit& request);

// Plays a KMS that holds the PSK: decodes `answer` (without the composition
// rules) and, if its last payload is an HMAC V, re-encrypts the first KEMAC
// (if AES-CM) treating its encr_data as the plaintext Key data chain, with the
// keys of RFC 6043 §5.1.2 (direction 0x02, the request's RAND, the answer's
// HDR PRF / CSB ID and T), and recomputes V over answer || request. An Error
// message (data type 6) gets its V recomputed with the request's auth_key
// over itself (§5.4). nullopt if the answer does not get that far.
std::optional<Bytes> ResealAnswer(ByteSpan answer, const AnswerContext& ctx);
// The inverse for seeds: `answer` with its first KEMAC decrypted in place
// (V left stale), so that ResealAnswer gives `answer` back.
std::optional<Bytes> WithPlaintextKemac(ByteSpan answer, const AnswerContext& ctx);

}  // namespace tkms::fuzz_service
