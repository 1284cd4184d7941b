// Ticket resolution by an authorised network function (TR 33.828 step 5,
// lawful interception): the unprotected RESOLVE_INIT_PSK a network function
// sends to the KMS's Zk listener and the unprotected RESOLVE_RESP it gets
// back (TS 33.328 Annex A on Zk, B.2.2.3 steps 6 and 10; RFC 6043 §4.2.3,
// §10).
//
// Why: a network function shares no PSK with the KMS. Mutual TLS on Zk
// authenticates both ends and protects the exchange, so the MIKEY messages
// carry no MAC and the keys travel in clear inside the TLS session:
//   RESOLVE_INIT_PSK: HDR (V flag 0, #CS 0, Empty map), T (NTP-UTC, fresh),
//     RANDRr (16 fresh bytes), [IDRr] (a network function may omit it),
//     IDRkms (the ticket's issuer), TICKET (as received, Initiator Data
//     included), V with MAC algorithm NULL and no MAC bytes;
//   RESOLVE_RESP: HDR (version, PRF func, CSB ID, #CS, map type copied),
//     T, IDRkms (required: the KMS asked), KEMAC with encryption NULL and
//     MAC NULL (the Key data sub-payloads in clear: MPKi, [MPKr], the
//     session keys, unforked), V with MAC NULL and no MAC bytes. No IDRr or
//     RANDRkms: a network function gets the ticket's keys as the ticket
//     holds them (an answer with RANDRkms would carry forked keys, refused);
//   a refusal: a MIKEY Error message (HDR, T, ERR) without V -> kMikeyError
//     with its numbers; an Error with V or SIGN does not follow Zk (there is
//     no key to check it with) -> kVerification, numbers kept.
// Every received byte is untrusted: the answer goes through the strict codec
// (bounded reader) and the same header / IDRkms binding and key-order checks
// as a Responder's RESOLVE_RESP (ue_internal.h: DecodeBoundResponse,
// SplitKeys). Keys are SecretBytes; error texts never carry key bytes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/ue/ticket_client.h"

namespace tkms::ue {

struct FunctionResolveParams {
  mikey::TicketPayload ticket;      // from the TRANSFER_INIT, Initiator Data included
  Bytes kms_identity;               // IDRkms: the issuer, the KMS asked (must not be empty)
  std::optional<Bytes> responder;   // IDRr, if the network function names one
  std::optional<uint32_t> csb_id;   // random if unset
  uint8_t prf_func = static_cast<uint8_t>(mikey::PrfFunc::kHmacSha256);
  TimestampSpec timestamp;          // NTP-UTC now by default
  std::optional<Bytes> randrr;      // 16 fresh bytes if unset; if given, 16-255 bytes
};

struct FunctionResolveInit {
  Bytes bytes;                      // the complete message, as sent
  mikey::Message message;
  uint32_t csb_id = 0;
  Bytes randrr;
  Bytes kms_identity;
  bool forking = false;             // the ticket's I flag: MPKr expected after MPKi
};

// The ticket's keys as the KMS returned them (unforked).
struct FunctionResolvedKeys {
  std::vector<mikey::KeyDataPayload> mpk_keys;      // MPKi, [MPKr] (I flag)
  std::vector<mikey::KeyDataPayload> session_keys;  // TEK / TGK / GTGK (+SALT), in order
  mikey::TPayload kms_timestamp;
  Bytes kms_identity;                               // IDRkms of the answer (required)
};

UeResult<FunctionResolveInit> BuildFunctionResolveInit(mikey::crypto::CryptoProvider& provider,
                                                       const FunctionResolveParams& params);

// Checks an unprotected RESOLVE_RESP (or a MIKEY Error message) answering
// `request`. Each key must carry an SPI unless require_key_spi is false.
UeResult<FunctionResolvedKeys> ParseFunctionResolveResp(mikey::crypto::CryptoProvider& provider,
                                                        ByteSpan response, const FunctionResolveInit& request,
                                                        bool require_key_spi = true);

// A short fingerprint of a key for logs and screens: the first 8 bytes of
// SHA-256(key || salt), hex (16 characters). Never the key itself.
std::string KeyFingerprint(const mikey::KeyDataPayload& key);

}  // namespace tkms::ue
