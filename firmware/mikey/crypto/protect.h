// Protecting whole MIKEY-TICKET messages: the V payload MAC over the RFC 6043
// §5.5 coverage, and KEMAC key transport (RFC 3830 §4.2.3, RFC 6043 §4.2).
//
// Why: callers (the KMS, the UE library, tests) should not assemble MAC inputs
// by hand. SealWithV encodes a message and fills its V MAC; VerifyV checks the
// V MAC of received bytes over exactly the bytes that were received; SealKemac
// and OpenKemac move Key data sub-payloads in and out of an encrypted KEMAC
// with NULL MAC, as every MIKEY-TICKET KEMAC is (the V payload authenticates).
// What is appended to the coverage (identities for initial messages, the
// complete initial message for responses; RFC 6043 Table 5.2) is the caller's
// to supply: it depends on who is verifying.
#pragma once

#include <span>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/mikey/codec.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/provider.h"

namespace tkms::mikey::crypto {

// Encodes `message`, whose last payload must be V (its MAC bytes are ignored
// and may be empty), and returns the bytes with the V MAC computed over the
// coverage followed by `appended`.
Result<Bytes> SealWithV(CryptoProvider& provider, const Message& message,
                        const SecretKey& auth_key, std::span<const ByteSpan> appended);

// Verifies the V MAC of received `bytes` (decoded into `decoded` with
// `extents`). PermissionDenied on a wrong MAC; InvalidArgument if the message
// does not end with V or names the NULL MAC algorithm.
Status VerifyV(CryptoProvider& provider, ByteSpan bytes, const Message& decoded,
               const std::vector<PayloadExtent>& extents, const SecretKey& auth_key,
               std::span<const ByteSpan> appended);

// A KEMAC carrying `keys`, encrypted with `keys_for_kemac` (encr and salt) and
// the IV inputs CSB ID and 64-bit timestamp (see TimestampForIv); MAC alg NULL.
Result<KemacPayload> SealKemac(CryptoProvider& provider, EncrAlg encr_alg,
                               const MessageKeys& keys_for_kemac, uint32_t csb_id, uint64_t ts64,
                               const std::vector<KeyDataPayload>& keys);

// Decrypts a KEMAC and decodes its Key data chain.
Result<std::vector<KeyDataPayload>> OpenKemac(CryptoProvider& provider, const KemacPayload& kemac,
                                              const MessageKeys& keys_for_kemac, uint32_t csb_id,
                                              uint64_t ts64);

}  // namespace tkms::mikey::crypto
