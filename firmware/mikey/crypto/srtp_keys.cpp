#include "firmware/mikey/crypto/srtp_keys.h"

#include <string>
#include <utility>

#include "firmware/mikey/crypto/derivation.h"

namespace tkms::mikey::crypto {
namespace {

template <typename Context>
Result<SrtpMasterKeys> Derive(CryptoProvider& provider, PrfFunc prf, const SecretKey& tgk,
                              const Context& context, size_t master_key_bytes,
                              std::optional<ByteSpan> key_data_salt) {
  if (master_key_bytes != 16 && master_key_bytes != 32) {
    return InvalidArgument("SRTP master key must be 16 or 32 bytes, not " +
                           std::to_string(master_key_bytes));
  }
  if (key_data_salt && key_data_salt->size() != kSrtpMasterSaltBytes) {
    return InvalidArgument("Key data salt has " + std::to_string(key_data_salt->size()) +
                           " bytes; SRTP needs " + std::to_string(kSrtpMasterSaltBytes));
  }
  SrtpMasterKeys keys;
  Result<SecretBytes> tek =
      DeriveFromTgk(provider, prf, tgk, TgkKeyType::kTek, context, master_key_bytes);
  if (!tek.ok()) return tek.error();
  keys.master_key = std::move(*tek);
  if (key_data_salt) {
    keys.master_salt = ToSecret(*key_data_salt);
    return keys;
  }
  Result<SecretBytes> salt =
      DeriveFromTgk(provider, prf, tgk, TgkKeyType::kSalt, context, kSrtpMasterSaltBytes);
  if (!salt.ok()) return salt.error();
  keys.master_salt = std::move(*salt);
  return keys;
}

}  // namespace

Result<SrtpMasterKeys> DeriveSrtpMasterKeys(CryptoProvider& provider, PrfFunc prf,
                                            const SecretKey& tgk,
                                            const Rfc3830TekContext& context,
                                            size_t master_key_bytes,
                                            std::optional<ByteSpan> key_data_salt) {
  return Derive(provider, prf, tgk, context, master_key_bytes, key_data_salt);
}

Result<SrtpMasterKeys> DeriveSrtpMasterKeys(CryptoProvider& provider, PrfFunc prf,
                                            const SecretKey& tgk,
                                            const TicketTekContext& context,
                                            size_t master_key_bytes,
                                            std::optional<ByteSpan> key_data_salt) {
  return Derive(provider, prf, tgk, context, master_key_bytes, key_data_salt);
}

}  // namespace tkms::mikey::crypto
