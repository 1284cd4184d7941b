// KEMAC encryption: the cipher applied to the Key data sub-payload chain of a
// KEMAC payload (RFC 3830 §4.2.3, RFC 6043 §6.2).
//
// Why: KEMAC is the only place where MIKEY carries key material (TGK, TEK,
// MPK, ...). AES-CM-128/-256 is SRTP AES counter mode (RFC 3711 §4.1.1,
// SRTP_PREFIX_LENGTH 0) with the 128-bit IV
//     IV = (S XOR (0x0000 || CSB ID || T)) || 0x0000
// S = 112-bit salt_key (derived next to encr_key), CSB ID from the HDR
// (0xFFFFFFFF for the base ticket's KEMAC, RFC 6043 §A.1), T = 64-bit
// timestamp (see TimestampForIv). At most 2^23 bits may be encrypted.
// RFC 3830 says T is "the timestamp sent by the Initiator"; MIKEY-TICKET
// responders and KMSs send fresh timestamps, so T is a parameter here and the
// message layer decides (our reading: the T payload of the message that
// carries the KEMAC; for the base ticket, the Ticket Data's T).
// NULL passes the data through unchanged (RFC 3830 §4.2.3).
//
// AES-KW-128 (RFC 3394, optional in RFC 3830) is NOT supported: the mbedTLS
// 2.28 shipped by Debian 12 is built without MBEDTLS_NIST_KW_C. Both
// directions return kUnimplemented for it.
//
// Decrypted data is key material and is returned as SecretBytes.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/types.h"

namespace tkms::mikey::crypto {

// Largest KEMAC plaintext for AES-CM: 2^23 bits (RFC 3830 §4.2.3).
inline constexpr size_t kMaxAesCmBytes = size_t{1} << 20;

// The 64-bit T of the IV from a T payload's value (its TS value read as a
// big-endian integer). NTP-UTC and NTP are used as they are; NTP-UTC-32 is
// padded to NTP-UTC with a zero fraction, i.e. value << 32 (RFC 6043 §6.3);
// COUNTER is padded with leading zeros, i.e. zero-extended (RFC 3830 §6.6
// states this for the PRF; we apply it to the IV as well, the only reading
// that gives a 64-bit T). 32-bit types with a value above 0xFFFFFFFF and
// unknown types give kInvalidArgument.
Result<uint64_t> TimestampForIv(TsType type, uint64_t raw_value);

// The AES-CM IV; salt_key must be 14 bytes.
Result<std::array<uint8_t, 16>> KemacIv(ByteSpan salt_key, uint32_t csb_id, uint64_t ts64);

// Encrypts the Key data chain. For AES-CM the encr_key must have the
// algorithm's length (16 or 32 bytes) and salt_key 14 bytes; for NULL both
// are ignored.
Result<std::vector<uint8_t>> KemacEncrypt(CryptoProvider& provider, EncrAlg alg,
                                          const SecretKey& encr_key, ByteSpan salt_key,
                                          uint32_t csb_id, uint64_t ts64, ByteSpan plaintext);

// The inverse of KemacEncrypt (AES-CM is its own inverse).
Result<SecretBytes> KemacDecrypt(CryptoProvider& provider, EncrAlg alg,
                                 const SecretKey& encr_key, ByteSpan salt_key, uint32_t csb_id,
                                 uint64_t ts64, ByteSpan ciphertext);

}  // namespace tkms::mikey::crypto
