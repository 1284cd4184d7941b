// The other mbedTLS contexts tkms holds: SHA-256, big numbers, certificate
// writers and the CTR-DRBG random generator, each an RAII, move-only owner.
//
// Why: mbedTLS is C; each context must be initialised before use and freed
// on every path (a forgotten free leaks, a double free corrupts). These are
// the owners for everything outside X.509 lists and keys (x509.h, pk.h):
// bundle digests (provisioning), the test PKI's ECDSA signatures and
// certificates, and the random generator the TLS code's handshakes need.
// Each owner keeps its context on the heap, so the address handed to mbedTLS
// stays valid across moves; a moved-from owner holds nothing.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include <mbedtls/bignum.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/sha256.h>
#include <mbedtls/x509_crt.h>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"

namespace tkms::pki {

// An mbedTLS context on the heap: Init on construction, Free (then delete)
// on destruction.
template <typename T, void (*Init)(T*), void (*Free)(T*)>
class MbedtlsOwner {
 public:
  MbedtlsOwner() : ctx_(new T) { Init(ctx_.get()); }
  T* native() { return ctx_.get(); }
  const T* native() const { return ctx_.get(); }

 private:
  struct Deleter {
    void operator()(T* ctx) const {
      Free(ctx);
      delete ctx;
    }
  };
  std::unique_ptr<T, Deleter> ctx_;
};

// A big number (mbedtls_mpi), e.g. the r and s of an ECDSA signature.
using Mpi = MbedtlsOwner<mbedtls_mpi, mbedtls_mpi_init, mbedtls_mpi_free>;
// An X.509 certificate being written (mbedtls_x509write_cert): test PKIs.
using CertificateWriter = MbedtlsOwner<mbedtls_x509write_cert, mbedtls_x509write_crt_init, mbedtls_x509write_crt_free>;

// SHA-256 over data given in pieces.
class Sha256 {
 public:
  Sha256();
  void Update(ByteSpan data);
  void Update(std::string_view data);
  // The digest of everything given. If mbedTLS failed anywhere (a hardware
  // implementation can), the digest is all zeros: no signature verifies
  // against it, and nothing else uses it.
  std::array<uint8_t, 32> Finish();

 private:
  MbedtlsOwner<mbedtls_sha256_context, mbedtls_sha256_init, mbedtls_sha256_free> ctx_;
  bool ok_ = false;
};

// mbedTLS's f_rng over a hal::EntropySource (`context` must point to one):
// 0, or MBEDTLS_ERR_ENTROPY_SOURCE_FAILED when the source fails. With
// hal::OsEntropy (getrandom(2), stateless) it is safe from any thread, so
// one TLS configuration can serve several listener threads without a lock.
int EntropyRandom(void* context, unsigned char* out, size_t length);

// CTR-DRBG (NIST SP 800-90A, AES-256) seeded from the platform's entropy
// sources (mbedtls_entropy), for mbedTLS operations that need random numbers
// in host memory (TLS handshakes). Secrets of the appliance come from the
// token's RNG, not from here.
class CtrDrbg {
 public:
  // Seeds a new generator; `personalization` separates its uses
  // ("tkms zk tls client"). kUnavailable if the entropy sources fail.
  static Result<CtrDrbg> Create(std::string_view personalization);
  ~CtrDrbg();
  CtrDrbg(CtrDrbg&& other) noexcept;
  CtrDrbg& operator=(CtrDrbg&& other) noexcept;
  CtrDrbg(const CtrDrbg&) = delete;
  CtrDrbg& operator=(const CtrDrbg&) = delete;

  Status Fill(std::span<uint8_t> out);
  // mbedTLS's f_rng, with native() as p_rng (mbedtls_ssl_conf_rng).
  static int Random(void* ctr_drbg, unsigned char* out, size_t length);
  mbedtls_ctr_drbg_context* native();

 private:
  struct State;
  explicit CtrDrbg(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace tkms::pki
