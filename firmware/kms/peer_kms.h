// PeerKmsClient: how the KMS reaches another KMS over Zk (TS 33.328 B.2.2.3
// steps 6-11, RFC 6043 §10).
//
// Why an interface: firmware/kms decides *what* is sent to a peer KMS (the
// unprotected RESOLVE_INIT_PSK of step 6) and what its answer means (steps
// 11-12, zk_forward.cpp); the transport (mutually authenticated TLS, pooled
// keep-alive connections, per-peer deadlines and metrics) is firmware/zk's.
// Tests substitute a fake.
//
// Contract of Resolve:
//   - `kms_uri` names a trust relation of the KMS's current configuration;
//   - `resolve_init` is the MIKEY message to POST to the peer's
//     /keymanagement?requesttype=ticketresolve (Annex A, base64 on the wire);
//   - returns the decoded MIKEY bytes of the peer's 200 answer (a
//     RESOLVE_RESP or an Error message; untrusted: the caller parses them);
//   - kNotFound: no trust relation with that KMS (any more);
//   - kUnavailable: the peer could not be reached or authenticated, did not
//     answer within the configured deadlines, answered with a non-200
//     status or a body that is not base64, or is in its retry pause after a
//     failure; the message says which (log-safe, no key bytes);
//   - kResourceExhausted: too many requests to that peer are in progress.
// Resolve never blocks longer than the peer's connect + response timeouts.
// Thread-safe: called from many handler threads at once.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::kms {

class PeerKmsClient {
 public:
  virtual ~PeerKmsClient() = default;
  virtual Result<std::vector<uint8_t>> Resolve(const std::string& kms_uri, ByteSpan resolve_init) = 0;
};

}  // namespace tkms::kms
