// Kms: the MIKEY-TICKET Key Management Service (RFC 6043 §4.2.1 Ticket
// Request, §4.2.3 Ticket Resolve, §5.4 errors; TS 33.328 B.2.2.2), PSK
// variants, mode 1 with the MIKEY base ticket.
//
// Why: this is the appliance's reason to exist. One Handle() call takes the
// bytes of a REQUEST_INIT_PSK or RESOLVE_INIT_PSK and returns the REQUEST_RESP,
// RESOLVE_RESP or MIKEY Error message to send, or a 4xx/5xx condition. It runs
// the steps of exchange.h top to bottom:
//
//   ParseRequest → Authenticate → AdmitRequester
//     → DecideTicketRequest | DecideTicketResolve → BuildResponse
//   (any refusal → BuildErrorMessage, or 400 / 503 / 500)
// and, for a Zk request (a peer KMS or a network function, docs/zk.md):
//   ParseRequest → AdmitZkClient → ResolveTicket → BuildUnprotectedResponse
//
// The refusal table (MIKEY error numbers, HTTP statuses, metrics labels) is
// docs/kms.md. The KMS keeps no per-call state beyond the replay cache.
// Thread-safe: Handle may run on many threads at once.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "firmware/kms/exchange.h"
#include "firmware/kms/keys.h"
#include "firmware/kms/replay_cache.h"
#include "firmware/kms/service.h"
#include "firmware/kms/ticket_format.h"
#include "hal/clock.h"

namespace tkms::kms {

class Kms final : public KmsService {
 public:
  // `keys` and `clock` must outlive the Kms. The replay cache is sized from
  // the initial snapshot's mikey section. The KMS's start time is read from
  // `clock` now: requests timestamped before it are refused (docs/kms.md,
  // "Replay protection across restarts").
  Kms(KmsKeys& keys, const hal::Clock& clock, std::shared_ptr<const KmsSnapshot> snapshot);

  // Swaps in a new snapshot; requests in flight finish on the old one.
  void SetSnapshot(std::shared_ptr<const KmsSnapshot> snapshot);
  // The Zk client tickets of other KMSs are resolved through (TS 33.328
  // B.2.2.3); nullptr (the default): such tickets get MIKEY error 14. Set
  // before serving; `peers` must outlive the Kms.
  void SetPeerClient(PeerKmsClient* peers) { peers_ = peers; }
  std::shared_ptr<const KmsSnapshot> snapshot() const;

  KmsReply Handle(const RequestContext& context, ByteSpan mikey) override;
  Readiness CheckReadiness() override;

  size_t replay_cache_size() const { return replay_.size(); }
  TimePoint started() const { return started_; }

 private:
  KmsReply Serve(const RequestContext& context, ByteSpan bytes);
  KmsReply RunSteps(RequestType type, ByteSpan bytes, ExchangeEnv& env);
  // Zk: an unprotected RESOLVE_INIT from a peer KMS or a network function.
  KmsReply RunZkSteps(const RequestContext& context, ByteSpan bytes, ExchangeEnv& env);

  KmsKeys& keys_;
  const hal::Clock& clock_;
  const TimePoint started_;
  std::shared_ptr<const KmsSnapshot> snapshot_;  // std::atomic_load/store
  ReplayCache replay_;
  TicketFormats formats_;
  PeerKmsClient* peers_ = nullptr;
};

}  // namespace tkms::kms
