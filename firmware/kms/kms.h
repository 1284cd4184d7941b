// Kms: the MIKEY-TICKET Key Management Service (RFC 6043 §4.2.1 Ticket
// Request, §4.2.3 Ticket Resolve, §5.4 errors; TS 33.328 B.2.2.2), PSK
// variants, mode 1 with the MIKEY base ticket.
//
// Why: this is the appliance's reason to exist. One Handle() call takes the
// bytes of a REQUEST_INIT_PSK or RESOLVE_INIT_PSK and returns the REQUEST_RESP,
// RESOLVE_RESP or MIKEY Error message to send, or a 4xx/5xx condition:
//
//   Ticket Request                        Ticket Resolve
//   decode (HDR readable, else 400)       decode
//   data type 11 (12: unsupported)        data type 16 (17: unsupported)
//   user by IDRpsk, else by IDRi          user by IDRpsk, else by IDRr
//   V: PSK-derived auth key (§5.1.2,      V: PSK-derived key, label with RANDRr
//      label with RANDRi) over msg ||        over msg || Identity_r ||
//      Identity_i || Identity_kms            Identity_kms
//   IDRi / IDRkms owned / ours            IDRr / IDRkms owned / ours
//   T within the window, replay cache     T within the window, replay cache
//   policy (policy.h) -> granted TP       ticket opened (ticket_format.h),
//   keys from the token RNG, ticket          validity TRs/TRe, responder in
//   sealed with the current ticket key       IDRr or a member of an IDRr group,
//   KEMAC(MPKi [MPKr] keys) under            Vr of Initiator Data if I flag,
//   PSK-derived keys; V over resp ||         forked MPKr'/TGK' (§5.1.1) with
//   request                                  IDRr + fresh RANDRkms; KEMAC; V
//
// Unexpected payloads are ignored (§4.2.1.4, §4.2.3.4); a payload that is
// required, or a role that appears twice, is refused. The refusal table
// (MIKEY error numbers, HTTP statuses, metrics labels) is docs/kms.md. Error
// messages (§5.4) copy version, PRF func and CSB ID, carry a fresh T and the
// ERR payload, and, once the sender has been authenticated, a V payload
// keyed like the message in error. The KMS keeps no per-call state beyond
// the replay cache. Thread-safe: Handle may run on many threads at once.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "firmware/kms/keys.h"
#include "firmware/kms/replay_cache.h"
#include "firmware/kms/service.h"
#include "firmware/kms/ticket_format.h"
#include "firmware/kms/users.h"
#include "hal/clock.h"
#include "provisioning/config.h"

namespace tkms::kms {

// What a request is checked against; replaced as a whole on reload.
struct KmsSnapshot {
  provisioning::KmsConfig config;
  std::shared_ptr<const UserDirectory> users;
};

class Kms final : public KmsService {
 public:
  // `keys` and `clock` must outlive the Kms. The replay cache is sized from
  // the initial snapshot's mikey section.
  Kms(KmsKeys& keys, const hal::Clock& clock, std::shared_ptr<const KmsSnapshot> snapshot);

  // Swaps in a new snapshot; requests in flight finish on the old one.
  void SetSnapshot(std::shared_ptr<const KmsSnapshot> snapshot);
  std::shared_ptr<const KmsSnapshot> snapshot() const;

  KmsReply Handle(const RequestContext& context, ByteSpan mikey) override;
  Readiness CheckReadiness() override;

  size_t replay_cache_size() const { return replay_.size(); }

 private:
  class Exchange;

  KmsKeys& keys_;
  const hal::Clock& clock_;
  std::shared_ptr<const KmsSnapshot> snapshot_;  // std::atomic_load/store
  ReplayCache replay_;
  TicketFormats formats_;
};

}  // namespace tkms::kms
