// MIKEY key derivations: PRF (prf.h) applied to the labels of labels.h, with
// output lengths taken from the negotiated algorithms.
//
// Why: every MIKEY / MIKEY-TICKET message key, TEK and forked key comes from
// one of these functions, so each RFC clause is implemented exactly once:
//   DeriveFromTgk (Rfc3830TekContext)  RFC 3830 §4.1.3
//   DeriveRfc3830MessageKeys           RFC 3830 §4.1.4 (PSK / envelope key)
//   DeriveMessageKeys                  RFC 6043 §5.1.2 (PSK / envelope key / MPKi / MPKr')
//   DeriveFromTgk (TicketTekContext)   RFC 6043 §5.1.3 (TGK / TGK' / GTGK)
//   DeriveForkedKey                    RFC 6043 §5.1.1 (MPKr', TGK')
//   DeriveInitiatorDataAuthKey         RFC 6043 §6.10  (Vr of the Initiator Data)
//   DeriveTicketProtectionKeys         RFC 6043 §A.2.1 (base ticket, from the TPK)
//   DeriveMpkKey                       RFC 6043 §A.2.2 (MPKi / MPKr from the MPK)
// The PRF is always a parameter: RFC 3830 and RFC 6043 §5.1.2/§5.1.3 use the
// HDR "PRF func"; forking, TPK and MPK derivations use the Ticket Policy's.
//
// Key lengths (RFC 3830 §4.2.3/§4.2.4, RFC 6043 §6.2): AES-CM-128 encr 16,
// salt 14; AES-CM-256 encr 32, salt 14; AES-KW-128 key 16, salt 8 (the KW IV);
// NULL encryption no keys; HMAC-SHA-1-160 auth 20; HMAC-SHA-256-256 auth 32;
// NULL MAC no key. Keys that an algorithm does not use are returned empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "firmware/mikey/crypto/labels.h"
#include "firmware/mikey/crypto/provider.h"
#include "firmware/mikey/types.h"

namespace tkms::mikey::crypto {

struct MessageKeyLengths {
  size_t encr = 0;
  size_t salt = 0;
  size_t auth = 0;
};
// kInvalidArgument for values outside the MIKEY registries.
Result<MessageKeyLengths> KeyLengthsFor(EncrAlg encr_alg, MacAlg mac_alg);

// The keys protecting one MIKEY message (KEMAC encryption and MAC / V).
struct MessageKeys {
  SecretBytes encr_key;
  SecretBytes salt_key;
  SecretBytes auth_key;
};

// RFC 3830 §4.1.3: a TEK, auth, encr or salt key of out_bytes bytes from a TGK.
Result<SecretBytes> DeriveFromTgk(CryptoProvider& provider, PrfFunc prf, const SecretKey& tgk,
                                  TgkKeyType type, const Rfc3830TekContext& context,
                                  size_t out_bytes);

// RFC 6043 §5.1.3: the same from a TGK, TGK' or GTGK of a MIKEY-TICKET CSB.
Result<SecretBytes> DeriveFromTgk(CryptoProvider& provider, PrfFunc prf, const SecretKey& tgk,
                                  TgkKeyType type, const TicketTekContext& context,
                                  size_t out_bytes);

// RFC 3830 §4.1.4: encr/salt/auth keys of a PSK or PK message from the
// pre-shared or envelope key.
Result<MessageKeys> DeriveRfc3830MessageKeys(CryptoProvider& provider, PrfFunc prf,
                                             const SecretKey& inkey, uint32_t csb_id,
                                             ByteSpan rand, EncrAlg encr_alg, MacAlg mac_alg);

// RFC 6043 §5.1.2: encr/salt/auth keys of an initial or response message of
// the Ticket Request, Transfer or Resolve exchange. An absent RAND enters the
// label as length 0; at least one of them must be present.
Result<MessageKeys> DeriveMessageKeys(CryptoProvider& provider, PrfFunc prf,
                                      const SecretKey& inkey, Direction direction,
                                      uint32_t csb_id, std::optional<ByteSpan> randri,
                                      std::optional<ByteSpan> randrr, EncrAlg encr_alg,
                                      MacAlg mac_alg);

// RFC 6043 §5.1.1: MPKr' from MPKr, or TGK' from a TGK, for the responder
// identity `id_data` (ID Data of the IDRr in RESOLVE_RESP / TRANSFER_RESP) and
// RANDRkms. The output has the inkey's length. `prf` is the Ticket Policy's.
Result<SecretBytes> DeriveForkedKey(CryptoProvider& provider, PrfFunc prf,
                                    const SecretKey& inkey, ForkedKeyType type,
                                    ByteSpan id_data, ByteSpan randrkms);

// RFC 6043 §6.10: the auth_key of the Initiator Data's Vr payload, from the
// unforked MPKr, MacLength(mac_alg) bytes (empty for the NULL MAC). The RFC
// does not name the PRF; the KMS verifying Vr knows only the ticket, so the
// caller passes the Ticket Policy's PRF func.
Result<SecretBytes> DeriveInitiatorDataAuthKey(CryptoProvider& provider, PrfFunc prf,
                                               const SecretKey& mpkr, MacAlg mac_alg);

// RFC 6043 §A.2.1: encr/salt keys of the base ticket's KEMAC (encr_alg) and
// the auth key of its V payload (mac_alg), from the TPK and the Ticket Data's
// RAND. `prf` is the Ticket Policy's.
Result<MessageKeys> DeriveTicketProtectionKeys(CryptoProvider& provider, PrfFunc prf,
                                               const SecretKey& tpk, ByteSpan rand,
                                               EncrAlg encr_alg, MacAlg mac_alg);

// RFC 6043 §A.2.2: MPKi or MPKr from the base ticket's MPK and the Ticket
// Data's RAND; the output has the MPK's length. `prf` is the Ticket Policy's.
Result<SecretBytes> DeriveMpkKey(CryptoProvider& provider, PrfFunc prf, const SecretKey& mpk,
                                 MpkKeyType type, ByteSpan rand);

}  // namespace tkms::mikey::crypto
