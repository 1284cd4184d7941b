// The token operations one Ticket Request / Ticket Resolve costs in tkms
// (checked by kms_service_test, used by `make bench` as the raw PKCS#11
// ceiling: the rate at which the token could do just these operations).
//
//   Ticket Request (PRF-HMAC-SHA-256, HMAC-SHA-256-256 V, no forking):
//     2 HMACs  request auth_key from the PSK (one 256-bit PRF block: A(1), out)
//     6 HMACs  REQUEST_RESP encr, salt and auth keys from the PSK
//     6 HMACs  ticket encr, salt and auth keys from the ticket key (TPK)
//     4 RNG    MPK SPI, session key (TGK), ticket RAND, MPK
//   Ticket Resolve: 2 + 6 (PSK) + 6 (TPK) HMACs; RNG only for RANDRkms when forking.
#pragma once

namespace tkms::kms {

struct TokenOpMix {
  int token_hmacs;
  int token_randoms;
};
inline constexpr TokenOpMix kTicketRequestMix{14, 4};
inline constexpr TokenOpMix kTicketResolveMix{14, 0};

}  // namespace tkms::kms
