// ZkTrust: see zk_trust.h.
#include "firmware/zk/zk_trust.h"

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

#include "firmware/base/printable.h"

namespace tkms::zk {
namespace {

constexpr char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != Lower(b[i])) return false;
  }
  return true;
}

bool IsSchemeChar(char c, bool first) {
  const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (first) return alpha;
  return alpha || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The length of a "scheme:" prefix of `uri` (RFC 3986 §3.1), 0 without one.
// "kms.example.org:8443" has none: what follows the colon is a port.
size_t SchemeLength(std::string_view uri) {
  const size_t colon = uri.find(':');
  if (colon == 0 || colon == std::string_view::npos) return 0;
  for (size_t i = 0; i < colon; ++i) {
    if (!IsSchemeChar(uri[i], i == 0)) return 0;
  }
  const std::string_view rest = uri.substr(colon + 1);
  if (AllDigits(rest.substr(0, rest.find_first_of("/;?#")))) return 0;
  return colon + 1;
}

std::string_view Span(const mbedtls_x509_buf& buf) {
  return {reinterpret_cast<const char*>(buf.p), buf.len};
}

ByteSpan Bytes(const mbedtls_x509_buf& buf) { return {buf.p, buf.len}; }

bool SameBytes(ByteSpan a, ByteSpan b) { return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin()); }

bool ValidAt(const mbedtls_x509_crt& crt, std::time_t now) {
  return pki::ToTimeT(crt.valid_from) <= now && now <= pki::ToTimeT(crt.valid_to);
}

// "HOST:PORT" (IPv6 as "[::1]:PORT") of a trust relation.
Status ParseEndpoint(std::string_view endpoint, ZkRelation& out) {
  const size_t colon = endpoint.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return InvalidArgument("not HOST:PORT");
  std::string_view host = endpoint.substr(0, colon);
  const std::string_view port = endpoint.substr(colon + 1);
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']') return InvalidArgument("unterminated IPv6 literal");
    host = host.substr(1, host.size() - 2);
  } else if (host.find(':') != std::string_view::npos) {
    return InvalidArgument("an IPv6 host needs brackets");
  }
  for (char c : host) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7F || c == '/' || c == '@') return InvalidArgument("invalid character in the host");
  }
  unsigned value = 0;
  const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (!AllDigits(port) || port.size() > 5 || ec != std::errc() || ptr != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return InvalidArgument("port must be 1-65535");
  }
  out.host = std::string(host);
  out.port = static_cast<uint16_t>(value);
  return Status::Ok();
}

// One PEM certificate of a configuration entry, as DER.
Result<pki::Bytes> OneCertificate(std::string_view pem, const std::string& field) {
  pki::X509Chain chain;
  TKMS_RETURN_IF_ERROR(chain.AddPem(pem, field, provisioning::kMaxCertificatePemBytes, 1));
  if (chain.size() != 1) return InvalidArgument(field + ": no certificate");
  const ByteSpan der = chain.front().der();
  return pki::Bytes(der.begin(), der.end());
}

}  // namespace

std::string KmsHost(std::string_view kms_uri) {
  if (kms_uri.size() > kMaxKmsUriBytes) return {};
  std::string_view s = kms_uri.substr(SchemeLength(kms_uri));
  if (s.substr(0, 2) == "//") s.remove_prefix(2);
  s = s.substr(0, s.find_first_of("/;?#"));
  if (const size_t at = s.rfind('@'); at != std::string_view::npos) s.remove_prefix(at + 1);
  if (!s.empty() && s.front() == '[') {
    const size_t close = s.find(']');
    s = close == std::string_view::npos ? std::string_view() : s.substr(1, close - 1);
  } else {
    s = s.substr(0, s.find(':'));
  }
  std::string host;
  host.reserve(s.size());
  for (char c : s) host.push_back(Lower(c));
  return host;
}

bool CertificateNamesKms(const mbedtls_x509_crt& certificate, std::string_view kms_uri) {
  const std::string host = KmsHost(kms_uri);
  if (host.empty()) return false;
  // dNSName SANs ([2] IA5String; mbedTLS 2.28 lists dNSName and otherName).
  bool has_dns_name = false;
  size_t seen = 0;
  for (const mbedtls_x509_sequence* san = &certificate.subject_alt_names; san != nullptr && san->buf.p != nullptr;
       san = san->next) {
    if (++seen > kMaxNameEntries) return false;
    if (san->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME)) continue;
    has_dns_name = true;
    if (EqualsIgnoreCase(Span(san->buf), host)) return true;
  }
  if (has_dns_name) return false;
  // No dNSName: the subject's one CN.
  const mbedtls_x509_buf* cn = nullptr;
  seen = 0;
  for (const mbedtls_x509_name* name = &certificate.subject; name != nullptr; name = name->next) {
    if (++seen > kMaxNameEntries) return false;
    if (name->oid.p == nullptr || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &name->oid) != 0) continue;
    if (cn != nullptr) return false;  // two CNs: which one would it be?
    cn = &name->val;
  }
  return cn != nullptr && EqualsIgnoreCase(Span(*cn), host);
}

// ---- ZkTrust -------------------------------------------------------------------------

namespace {

// A certificate accepted by exact DER (a relation's `certificate`, or a
// network function's).
struct Pinned {
  pki::X509Chain crt;  // one certificate
  ZkClient who;
};

}  // namespace

struct ZkTrust::Parsed {
  std::vector<Pinned> pinned;
  std::vector<std::pair<size_t, pki::X509Chain>> cas;  // relation index, its CA
  const pki::X509Chain* CaOf(size_t relation) const {
    for (const auto& [index, ca] : cas) {
      if (index == relation) return &ca;
    }
    return nullptr;
  }
};

ZkTrust::ZkTrust() : parsed_(std::make_unique<Parsed>()) {}
ZkTrust::~ZkTrust() = default;

Result<std::shared_ptr<const ZkTrust>> ZkTrust::Build(const provisioning::KmsConfig& config) {
  if (config.trust_relations.size() > provisioning::kMaxTrustRelations ||
      config.network_functions.size() > provisioning::kMaxNetworkFunctions) {
    return InvalidArgument("Zk trust: too many trust relations or network functions");
  }
  std::shared_ptr<ZkTrust> trust(new ZkTrust());
  for (size_t i = 0; i < config.trust_relations.size(); ++i) {
    const provisioning::TrustRelationConfig& in = config.trust_relations[i];
    const std::string field = "trust_relations[" + std::to_string(i) + "]";
    if (KmsHost(in.kms_uri).empty()) return InvalidArgument(field + ".kms_uri: no host");
    if (trust->FindRelation(in.kms_uri) != nullptr) return InvalidArgument(field + ".kms_uri: repeated");
    if (in.certificate.empty() == in.ca.empty()) {
      return InvalidArgument(field + ": exactly one of certificate and ca is needed");
    }
    ZkRelation relation;
    relation.kms_uri = in.kms_uri;
    relation.endpoint = in.endpoint;
    if (Status endpoint = ParseEndpoint(in.endpoint, relation); !endpoint.ok()) {
      return InvalidArgument(field + ".endpoint \"" + EscapedDetail(in.endpoint) + "\": " + endpoint.message());
    }
    const bool pinned = !in.certificate.empty();
    auto der = OneCertificate(pinned ? in.certificate : in.ca, field + (pinned ? ".certificate" : ".ca"));
    if (!der.ok()) return der.error();
    pki::X509Chain chain;
    TKMS_RETURN_IF_ERROR(chain.AddDer(*der, field));
    if (pinned) {
      relation.certificate_der = std::move(*der);
      trust->parsed_->pinned.push_back({std::move(chain), ZkClient{ZkClientKind::kPeerKms, in.kms_uri, true}});
    } else {
      if (!chain.front().is_ca()) return InvalidArgument(field + ".ca: not a CA certificate");
      relation.ca_der = std::move(*der);
      trust->parsed_->cas.emplace_back(trust->relations_.size(), std::move(chain));
    }
    trust->relations_.push_back(std::move(relation));
  }
  for (size_t i = 0; i < config.network_functions.size(); ++i) {
    const provisioning::NetworkFunctionConfig& in = config.network_functions[i];
    const std::string field = "network_functions[" + std::to_string(i) + "]";
    if (in.name.empty()) return InvalidArgument(field + ".name: empty");
    auto der = OneCertificate(in.certificate, field + ".certificate");
    if (!der.ok()) return der.error();
    pki::X509Chain chain;
    TKMS_RETURN_IF_ERROR(chain.AddDer(*der, field));
    trust->parsed_->pinned.push_back(
        {std::move(chain), ZkClient{ZkClientKind::kNetworkFunction, in.name, in.may_resolve()}});
  }
  return std::shared_ptr<const ZkTrust>(std::move(trust));
}

const ZkRelation* ZkTrust::FindRelation(std::string_view kms_uri) const {
  for (const ZkRelation& relation : relations_) {
    if (relation.kms_uri == kms_uri) return &relation;
  }
  return nullptr;
}

std::optional<ZkClient> ZkTrust::Authorize(ByteSpan client_cert_der, std::time_t now) const {
  if (client_cert_der.empty() || client_cert_der.size() > pki::kMaxCertificateDerBytes) return std::nullopt;
  std::optional<ZkClient> found;
  int matches = 0;
  for (const Pinned& pin : parsed_->pinned) {
    const mbedtls_x509_crt& crt = pin.crt.front().native();
    if (!SameBytes(Bytes(crt.raw), client_cert_der)) continue;
    if (!ValidAt(crt, now)) return std::nullopt;
    found = pin.who;
    ++matches;
  }
  if (!parsed_->cas.empty()) {
    pki::X509Chain parsed;
    if (parsed.AddDer(client_cert_der, "Zk client certificate").ok()) {
      mbedtls_x509_crt* crt = parsed.native();
      for (const auto& [index, ca] : parsed_->cas) {
        uint32_t flags = 0;
        // mbedTLS reads the anchor list only; its API is not const.
        const int rc = mbedtls_x509_crt_verify_with_profile(crt, const_cast<pki::X509Chain&>(ca).native(), nullptr,
                                                            &mbedtls_x509_crt_profile_default, nullptr, &flags,
                                                            nullptr, nullptr);
        if (rc != 0 || flags != 0 || !ValidAt(*crt, now)) continue;
        if (!CertificateNamesKms(*crt, relations_[index].kms_uri)) continue;
        found = ZkClient{ZkClientKind::kPeerKms, relations_[index].kms_uri, true};
        ++matches;
      }
    }
  }
  if (matches != 1) return std::nullopt;  // nobody, or ambiguous
  return found;
}

web::ClientAuth ZkTrust::ListenerClientAuth() const {
  web::ClientAuth auth;
  auth.required = true;
  for (const auto& [index, ca] : parsed_->cas) {
    const ByteSpan der = ca.front().der();
    auth.trust_anchors_der.emplace_back(der.begin(), der.end());
  }
  for (const Pinned& pin : parsed_->pinned) auth.pinned.push_back(web::FingerprintOf(pin.crt.front().der()));
  return auth;
}

// The client side's rule for one relation (zk_trust.h).
class ZkTrust::RelationVerifier final : public web::client::ServerVerifier {
 public:
  RelationVerifier(std::shared_ptr<const ZkTrust> trust, size_t index) : trust_(std::move(trust)), index_(index) {}

  Status Verify(const mbedtls_x509_crt& chain, uint32_t flags) const override {
    const ZkRelation& relation = trust_->relations_[index_];
    const std::string subject = pki::CertificateRef(chain).subject();
    // Flags other than "not trusted" (expiry, usage, signature) refuse
    // either way; trust comes from the pin or from the relation's CA.
    const uint32_t other_flags = flags & ~static_cast<uint32_t>(MBEDTLS_X509_BADCERT_NOT_TRUSTED);
    if (other_flags != 0) return PermissionDenied(subject + ": " + pki::VerifyFlagsText(other_flags));
    if (!relation.certificate_der.empty()) {
      if (!SameBytes(Bytes(chain.raw), relation.certificate_der)) {
        return PermissionDenied(subject + " is not the pinned certificate of " + EscapedDetail(relation.kms_uri));
      }
    } else {
      const pki::X509Chain* ca = trust_->parsed_->CaOf(index_);
      uint32_t ca_flags = 0;
      const int rc = ca == nullptr ? -1
                                   : mbedtls_x509_crt_verify_with_profile(
                                         const_cast<mbedtls_x509_crt*>(&chain),
                                         const_cast<pki::X509Chain*>(ca)->native(), nullptr,
                                         &mbedtls_x509_crt_profile_default, nullptr, &ca_flags, nullptr, nullptr);
      if (rc != 0 || ca_flags != 0) {
        return PermissionDenied(subject + " does not chain to the CA of " + EscapedDetail(relation.kms_uri) + " (" +
                                pki::VerifyFlagsText(ca_flags) + ")");
      }
    }
    if (!CertificateNamesKms(chain, relation.kms_uri)) {
      return PermissionDenied(subject + " does not name " + EscapedDetail(relation.kms_uri) + " (host \"" +
                              EscapedDetail(KmsHost(relation.kms_uri)) + "\")");
    }
    return Status::Ok();
  }

 private:
  std::shared_ptr<const ZkTrust> trust_;
  size_t index_;
};

std::shared_ptr<const web::client::ServerVerifier> ZkTrust::ServerVerifierFor(std::string_view kms_uri) const {
  for (size_t i = 0; i < relations_.size(); ++i) {
    if (relations_[i].kms_uri == kms_uri) return std::make_shared<RelationVerifier>(shared_from_this(), i);
  }
  return nullptr;
}

}  // namespace tkms::zk
