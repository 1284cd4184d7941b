// The MAC of KEMAC and V payloads (RFC 3830 §4.2.4, RFC 6043 §6.2 / §6.9).
//
// Why: every PSK-protected MIKEY / MIKEY-TICKET message and the base ticket
// are authenticated by HMAC-SHA-1-160 or HMAC-SHA-256-256 (full-length tags,
// RFC 2104) over a concatenation of byte ranges (message minus MAC, then
// identities or the previous message; digest §7.6), so the MAC takes a list of
// parts instead of one buffer. NULL MAC gives an empty tag. Verification is
// constant-time and never reveals the expected or received tag.
#pragma once

#include <span>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/types.h"

namespace tkms::mikey::crypto {

// MacLength(alg) bytes of HMAC(auth_key, parts[0] || parts[1] || ...); empty
// for MacAlg::kNull (auth_key is then not used).
Result<std::vector<uint8_t>> ComputeMac(CryptoProvider& provider, MacAlg alg,
                                        const SecretKey& auth_key,
                                        std::span<const ByteSpan> parts);

// Ok if `mac` equals ComputeMac(...). A mismatch, including a MAC of the wrong
// length, gives PermissionDenied("MAC verification failed").
Status VerifyMac(CryptoProvider& provider, MacAlg alg, const SecretKey& auth_key,
                 std::span<const ByteSpan> parts, ByteSpan mac);

}  // namespace tkms::mikey::crypto
