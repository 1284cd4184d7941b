// User identities in the KMS user identity format: the one transformation
// every identity goes through before two identities are compared.
//
// Why: TS 33.328 B.2.2.2 step 5 matches "after transformation into a KMS
// User Identity format" the identity a user claims (IDRi / IDRr, RFC 6043
// §6.6) against the identities the KMS knows (configuration, bundles, the
// token's user labels, the groups and responders of a ticket). URIs have
// parts that compare case-insensitively, so "sip:alice@Example.ORG" and
// "SIP:alice@example.org" name the same user; comparing bytes would make one
// of them a stranger (and, worse, let one user's identity be provisioned
// twice). Every place that matches identities calls CanonicalUserIdentity
// (or SameUserIdentity); nothing compares identity bytes directly.
//
// The transformation (docs/kms.md, "Identities"):
//   - a URI (RFC 3986 §3.1 scheme ":" ...): the scheme is lower-cased;
//       sip:, sips: (RFC 3261 §19.1.4): the host part (after the last '@'
//         of the user-info, up to ':', ';', '?' or the end) is lower-cased;
//         the user part stays case-sensitive;
//       tel: (RFC 3966 §3, §4): the visual separators - . ( ) are removed
//         from the number (up to the first ';');
//       any scheme with "//" authority (RFC 3986 §3.2.2): the host is
//         lower-cased;
//     and in every URI, percent-encodings of unreserved characters
//     (RFC 3986 §2.3: ALPHA DIGIT - . _ ~) are decoded and the hex digits of
//     the others are upper-cased (RFC 3986 §6.2.2.1, §6.2.2.2);
//   - anything without a scheme (a KMS identity such as "kms.example.org",
//     an FQDN: RFC 1035 §2.3.3) is lower-cased as a whole.
// The transformation is idempotent and never changes the length beyond
// shrinking it. It does not validate: identity syntax is checked where
// identities are provisioned (provisioning/config.h).
#pragma once

#include <string>
#include <string_view>

namespace tkms {

std::string CanonicalUserIdentity(std::string_view identity);

// CanonicalUserIdentity(a) == CanonicalUserIdentity(b).
bool SameUserIdentity(std::string_view a, std::string_view b);

}  // namespace tkms
