// The MIKEY key derivation PRF.
//
// Why: every MIKEY key (message encr/auth/salt keys, TEKs, forked keys,
// MPKi/MPKr) is derived with one PRF, selected by the HDR or Ticket Policy
// "PRF func" field:
//   PrfFunc::kMikey1     RFC 3830 §4.1.2 — P-function over HMAC-SHA-1,
//                        160-bit output blocks;
//   PrfFunc::kHmacSha256 RFC 6043 §6.1   — the same construction over
//                        HMAC-SHA-256 with 256-bit output blocks.
// P(s, label, m) = HMAC(s, A_1 || label) || ... || HMAC(s, A_m || label) with
// A_0 = label, A_i = HMAC(s, A_(i-1)). The inkey is split into 256-bit chunks
// s_1..s_n (only the last may be shorter, and it is not padded; this is 256
// bits for both hashes), and the output is the leading outkey bits of
// P(s_1, label, m) XOR ... XOR P(s_n, label, m).
//
// Keys of at most 32 bytes are used as given (no SliceKey call), so keys held
// in a token that cannot slice keys work for all usual MIKEY key sizes.
#pragma once

#include <cstddef>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/types.h"

namespace tkms::mikey::crypto {

// The HMAC hash of a PRF func; kInvalidArgument for an unknown value.
Result<HashAlg> PrfHash(PrfFunc prf);

// outkey_bytes bytes of PRF(inkey, label). MIKEY keys are whole bytes, so
// outkey_len (bits) = 8 * outkey_bytes. Rejects an empty inkey and
// outkey_bytes == 0 with kInvalidArgument.
Result<SecretBytes> Prf(CryptoProvider& provider, PrfFunc prf, const SecretKey& inkey,
                        ByteSpan label, size_t outkey_bytes);

}  // namespace tkms::mikey::crypto
