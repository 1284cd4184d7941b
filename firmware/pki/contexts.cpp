// mbedTLS context owners: see contexts.h.
#include "firmware/pki/contexts.h"

#include <mbedtls/entropy.h>

#include <utility>

#include "firmware/pki/mbedtls_error.h"
#include "hal/entropy.h"

namespace tkms::pki {

int EntropyRandom(void* context, unsigned char* out, size_t length) {
  auto* source = static_cast<hal::EntropySource*>(context);
  if (source == nullptr) return MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
  return source->Random(std::span<uint8_t>(out, length)).ok() ? 0 : MBEDTLS_ERR_ENTROPY_SOURCE_FAILED;
}


Sha256::Sha256() { ok_ = mbedtls_sha256_starts_ret(ctx_.native(), /*is224=*/0) == 0; }

void Sha256::Update(ByteSpan data) { ok_ = ok_ && mbedtls_sha256_update_ret(ctx_.native(), data.data(), data.size()) == 0; }

void Sha256::Update(std::string_view data) {
  Update(ByteSpan(reinterpret_cast<const uint8_t*>(data.data()), data.size()));
}

std::array<uint8_t, 32> Sha256::Finish() {
  std::array<uint8_t, 32> digest{};
  ok_ = ok_ && mbedtls_sha256_finish_ret(ctx_.native(), digest.data()) == 0;
  if (!ok_) digest.fill(0);
  return digest;
}

// The entropy context must outlive the DRBG that was seeded from it (the
// DRBG keeps a pointer to it for reseeding): both live in one heap object.
struct CtrDrbg::State {
  MbedtlsOwner<mbedtls_entropy_context, mbedtls_entropy_init, mbedtls_entropy_free> entropy;
  MbedtlsOwner<mbedtls_ctr_drbg_context, mbedtls_ctr_drbg_init, mbedtls_ctr_drbg_free> drbg;
};

CtrDrbg::CtrDrbg(std::unique_ptr<State> state) : state_(std::move(state)) {}
CtrDrbg::~CtrDrbg() = default;
CtrDrbg::CtrDrbg(CtrDrbg&& other) noexcept = default;
CtrDrbg& CtrDrbg::operator=(CtrDrbg&& other) noexcept = default;

Result<CtrDrbg> CtrDrbg::Create(std::string_view personalization) {
  auto state = std::make_unique<State>();
  const int ret = mbedtls_ctr_drbg_seed(state->drbg.native(), mbedtls_entropy_func, state->entropy.native(),
                                        reinterpret_cast<const unsigned char*>(personalization.data()),
                                        personalization.size());
  if (ret != 0) return Unavailable("cannot seed the CTR-DRBG: " + MbedtlsError(ret));
  return CtrDrbg(std::move(state));
}

Status CtrDrbg::Fill(std::span<uint8_t> out) {
  if (!state_) return FailedPrecondition("the CTR-DRBG was moved from");
  const int ret = mbedtls_ctr_drbg_random(state_->drbg.native(), out.data(), out.size());
  if (ret != 0) return Unavailable("CTR-DRBG: " + MbedtlsError(ret));
  return Status::Ok();
}

int CtrDrbg::Random(void* ctr_drbg, unsigned char* out, size_t length) {
  return mbedtls_ctr_drbg_random(ctr_drbg, out, length);
}

mbedtls_ctr_drbg_context* CtrDrbg::native() { return state_ ? state_->drbg.native() : nullptr; }

}  // namespace tkms::pki
