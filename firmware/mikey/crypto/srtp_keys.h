// SRTP master key and master salt of one crypto session.
//
// Why: the TEK derived from the TGK is the SRTP master key (RFC 3830 §4.1.3,
// RFC 6043 §5.1.3). The master salt is the salt carried in the Key data
// sub-payload (TGK+SALT) when present — it SHALL then be used and no salt
// derived — and otherwise derived from the TGK with constant 0x39A2C14B.
// Two label forms exist:
//   Rfc3830TekContext  RFC 3830 (SRTP-ID map: CS ID = position in the map,
//                      HDR CSB ID, RAND);
//   TicketTekContext   RFC 6043 (GENERIC-ID map CS ID, RANDRi iff H flag,
//                      RANDRr iff G flag; see TicketTekContextFromFlags).
// Master keys are 16 bytes (AES-128) or 32 bytes (AES-256); the master salt
// is 112 bits for SRTP AES-CM (RFC 3711 §8.2, RFC 6188).
#pragma once

#include <cstddef>
#include <optional>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/mikey/crypto/labels.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/types.h"

namespace tkms::mikey::crypto {

inline constexpr size_t kSrtpMasterSaltBytes = 14;

struct SrtpMasterKeys {
  SecretBytes master_key;
  SecretBytes master_salt;
};

// master_key_bytes must be 16 or 32; key_data_salt, if given, must be
// kSrtpMasterSaltBytes long (kInvalidArgument otherwise).
Result<SrtpMasterKeys> DeriveSrtpMasterKeys(CryptoProvider& provider, PrfFunc prf,
                                            const SecretKey& tgk,
                                            const Rfc3830TekContext& context,
                                            size_t master_key_bytes,
                                            std::optional<ByteSpan> key_data_salt);
Result<SrtpMasterKeys> DeriveSrtpMasterKeys(CryptoProvider& provider, PrfFunc prf,
                                            const SecretKey& tgk,
                                            const TicketTekContext& context,
                                            size_t master_key_bytes,
                                            std::optional<ByteSpan> key_data_salt);

}  // namespace tkms::mikey::crypto
