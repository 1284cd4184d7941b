// The pieces of signed-bundle verification (bundle.h, docs/bundles.md),
// internal to provisioning/: the envelope reader (bundle_envelope.cpp), the
// certificate-chain and signer checks (bundle_chain.cpp) that VerifyBundle
// and SignBundle (bundle.cpp) both run.
//
// Why a header of its own: verification is split along its steps; each
// step refuses with a message that starts with the field it concerns
// ("certificates[1]: ...") and the status code of docs/bundles.md's table.
#pragma once

#include <cstddef>
#include <ctime>
#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include "firmware/base/printable.h"
#include "firmware/base/status.h"
#include "firmware/pki/x509.h"
#include "provisioning/bundle.h"

namespace tkms::provisioning::internal {

// "certificates[2]".
std::string IndexName(std::string_view member, size_t index);
// kInvalidArgument / kPermissionDenied "<field>: <problem>".
Status InvalidField(std::string_view field, std::string_view problem);
Status DeniedField(std::string_view field, std::string_view problem);

// ParseBundle without its exception guard (step 1 of VerifyBundle).
Result<Bundle> ParseEnvelope(std::string_view text);

// Step 2: every DER certificate parses, with nothing after it
// ("certificates[i]: ...").
Status ParseCertificates(const std::vector<Bytes>& der, pki::X509Chain& out);
// Step 2: intermediates (certificates[1..]) are CAs that may sign certificates.
Status CheckIntermediates(const pki::X509Chain& certificates);
// Step 2: certificates[i + 1] is named as the issuer of certificates[i].
Status CheckChainOrder(const pki::X509Chain& certificates);
// Step 3: the chain certificates[0] -> ... -> anchor verifies, uses every
// certificate in order, and each certificate is valid at `now`.
Status VerifyChain(pki::X509Chain& certificates, pki::X509Chain& anchor, std::time_t now);
// Step 4: the signer has keyUsage digitalSignature, is not a CA, has an EC
// P-256 key.
Status CheckSigner(pki::CertificateRef signer);

// Runs `body`, turning an escaping exception into a Status: the public
// functions of bundle.h never throw.
template <typename T, typename F>
Result<T> Guard(const char* what, F&& body) noexcept {
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return ResourceExhausted(std::string(what) + ": out of memory");
  } catch (const std::exception& e) {
    return Internal(std::string(what) + ": unexpected exception: " + Escaped(e.what()));
  } catch (...) {
    return Internal(std::string(what) + ": unexpected exception");
  }
}

}  // namespace tkms::provisioning::internal
