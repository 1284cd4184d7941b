// ZkTrust: who may talk to this KMS over Zk, and whom this KMS accepts as a
// peer KMS: the certificate-to-identity rules of KMS-to-KMS resolution.
//
// Why: TS 33.328 B.2.2.3 (steps 6-11) and RFC 6043 §10 have the responder's
// KMS (KMS_R) resolve a ticket issued by another KMS (KMS_I) over a
// mutually authenticated channel (TLS with client certificates, RFC 5246
// §7.4.4 / §7.4.6). Both ends must map a certificate to exactly one peer
// the configuration trusts (trust_relations), or, on the server side, to a
// network function (network_functions, TR 33.828 step 5), by one written
// rule (/work/zk-contract.md "Identity rules", docs/zk.md):
//   - host(kms_uri): the kms_uri without "scheme:", "//", "user@", ":port",
//     "/path" (and ";params", "?query", "#fragment"), lowercased;
//   - a certificate names KMS X if one of its dNSName SANs equals host(X)
//     (case-insensitive), or, when it has no dNSName SAN, its one subject
//     CN does;
//   - server side (Authorize): a peer KMS is a relation whose pinned
//     `certificate` is exactly the client's DER (and valid at `now`), or a
//     relation whose `ca` verifies the certificate with no flag at all and
//     whose kms_uri the certificate names; a network function is one whose
//     pinned certificate is exactly the DER (valid at `now`). More than one
//     match, or none: nobody. A certificate of another CA never maps, even
//     if it names the KMS;
//   - client side (ServerVerifier): the server's leaf must be the
//     relation's pinned certificate (exact DER; mbedTLS's only flag "not
//     trusted") or chain to the relation's CA with no flag, AND name the
//     relation's kms_uri. The endpoint's host is never used to verify.
// Every input (configuration PEM, a client's DER, a server's chain) is
// untrusted: sizes are capped before mbedTLS sees them, loops are bounded
// by list caps, nothing recurses, and refusals are log-safe texts.
// Immutable after Build; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mbedtls/x509_crt.h>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "firmware/pki/x509.h"
#include "provisioning/config.h"
#include "web/client/tls_client.h"
#include "web/tls_server.h"

namespace tkms::zk {

// Longest kms_uri KmsHost reads (longer: no host, names nothing).
inline constexpr size_t kMaxKmsUriBytes = 1024;
// Most SAN entries and subject attributes looked at in one certificate.
inline constexpr size_t kMaxNameEntries = 64;

// host(kms_uri) as above; "" when there is none or the URI is too long.
std::string KmsHost(std::string_view kms_uri);
// Whether `certificate` names the KMS `kms_uri` (rule above).
bool CertificateNamesKms(const mbedtls_x509_crt& certificate, std::string_view kms_uri);

enum class ZkClientKind : uint8_t { kPeerKms, kNetworkFunction };

// Who a Zk client certificate is.
struct ZkClient {
  ZkClientKind kind = ZkClientKind::kPeerKms;
  std::string name;          // the relation's kms_uri, or the network function's name
  bool may_resolve = false;  // peer KMS: always; network function: role "resolve"
  bool operator==(const ZkClient&) const = default;
};

// One trust relation, parsed: where the peer is and how it is recognised.
struct ZkRelation {
  std::string kms_uri;
  std::string endpoint;  // "HOST:PORT" as configured
  std::string host;      // of the endpoint, without brackets
  uint16_t port = 0;
  pki::Bytes certificate_der;  // pinned peer certificate, or empty
  pki::Bytes ca_der;           // the peer's CA, or empty
  // The same peer reached the same way (what a pool may be kept across).
  bool SameTransport(const ZkRelation& other) const {
    return endpoint == other.endpoint && certificate_der == other.certificate_der && ca_der == other.ca_der;
  }
};

// The trust relations and network functions of one configuration.
class ZkTrust : public std::enable_shared_from_this<ZkTrust> {
 public:
  // From the configuration's trust_relations and network_functions (the
  // loader has validated them; this checks again: every PEM one parseable
  // certificate, endpoints "HOST:PORT", kms_uris unique).
  // kInvalidArgument naming the entry otherwise.
  static Result<std::shared_ptr<const ZkTrust>> Build(const provisioning::KmsConfig& config);
  ~ZkTrust();
  ZkTrust(const ZkTrust&) = delete;
  ZkTrust& operator=(const ZkTrust&) = delete;

  // Server side: the one peer KMS or network function `client_cert_der`
  // is, at `now`; nullopt for nobody (unknown, ambiguous, expired, not
  // parseable, larger than pki::kMaxCertificateDerBytes).
  std::optional<ZkClient> Authorize(ByteSpan client_cert_der, std::time_t now) const;

  // The Zk listener's client authentication: required; anchors every
  // relation's CA; pins every relation's and network function's
  // certificate. (No relation and no function: required with neither, which
  // TlsCredentials::Build refuses; a KMS without them serves no Zk.)
  web::ClientAuth ListenerClientAuth() const;

  const std::vector<ZkRelation>& relations() const { return relations_; }
  const ZkRelation* FindRelation(std::string_view kms_uri) const;
  // The client side's check of the server of `kms_uri`'s relation; nullptr
  // if there is no such relation. Keeps this ZkTrust alive.
  std::shared_ptr<const web::client::ServerVerifier> ServerVerifierFor(std::string_view kms_uri) const;

 private:
  struct Parsed;
  class RelationVerifier;
  ZkTrust();
  std::vector<ZkRelation> relations_;
  std::unique_ptr<Parsed> parsed_;  // the parsed pins and CAs
};

}  // namespace tkms::zk
