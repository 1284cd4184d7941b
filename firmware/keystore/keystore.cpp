// Keystore core: opening and logging in, the locks, the catalogue's upkeep,
// and key lookup. Creating, retiring, cloning, ticket keys, non-key objects
// and crypto operations are in key_admin.cpp, key_cloning.cpp,
// ticket_keys.cpp, token_objects.cpp and token_crypto.cpp.
#include "firmware/keystore/keystore.h"

#include <utility>

#include "firmware/keystore/catalog.h"
#include "firmware/keystore/crypto_provider.h"
#include "firmware/keystore/guarded.h"
#include "firmware/keystore/key_policy.h"
#include "firmware/keystore/token_key.h"
#include "pkcs11/ck_status.h"

namespace tkms::keystore {

using mikey::crypto::SecretKeyPtr;
using pkcs11::Module;
using pkcs11::Session;
using pkcs11::SessionPool;
using pkcs11::TokenInfo;
using pkcs11::TokenLogin;

// ---- opening -----------------------------------------------------------------

Result<std::unique_ptr<Keystore>> Keystore::Open(const KeystoreOptions& options) {
  return Guarded("Keystore::Open", [&]() -> Result<std::unique_ptr<Keystore>> {
    Result<std::shared_ptr<Module>> module = Module::Load(options.module_path);
    if (!module.ok()) return module.error();
    return Open(std::move(*module), options);
  });
}

Result<std::unique_ptr<Keystore>> Keystore::Open(std::shared_ptr<Module> module,
                                                 const KeystoreOptions& options) {
  return Guarded("Keystore::Open", [&]() -> Result<std::unique_ptr<Keystore>> {
    if (module == nullptr) return InvalidArgument("no PKCS#11 module");
    if (options.sessions == 0) return InvalidArgument("the session pool needs at least 1 session");
    if (options.pin.empty()) return InvalidArgument("the user PIN is empty");
    TKMS_RETURN_IF_ERROR(module->CheckProcess());
    Result<TokenInfo> token = pkcs11::FindToken(*module, options.token);
    if (!token.ok()) return token.error();
    if (!token->initialized) {
      return FailedPrecondition("token '" + token->label + "' is not initialised");
    }
    if (!token->user_pin_initialized) {
      return FailedPrecondition("token '" + token->label + "' has no user PIN (see InitToken)");
    }
    Result<TokenLogin> login = TokenLogin::Open(module, token->slot_id, options.pin);
    if (!login.ok()) return login.error();
    std::unique_ptr<Keystore> keystore(
        new Keystore(std::move(module), std::move(*token), options, std::move(*login)));
    {
      auto lock = keystore->WriteLock();
      TKMS_RETURN_IF_ERROR(keystore->RefreshLocked());
    }
    return keystore;
  });
}

Keystore::Keystore(std::shared_ptr<Module> module, TokenInfo token, const KeystoreOptions& options,
                   TokenLogin login)
    : module_(std::move(module)), token_(std::move(token)), pin_(options.pin),
      session_copies_(options.session_copies), login_(std::move(login)),
      pool_(std::make_unique<SessionPool>(module_, token_.slot_id, options.sessions,
                                          options.session_wait)),
      catalog_(std::make_unique<Catalog>()),
      provider_(std::make_unique<Pkcs11CryptoProvider>(*this)) {}

Keystore::~Keystore() = default;

// glibc's rwlock prefers readers: under steady load an admin call could wait
// forever. A writer holds gate_ while it waits, so new readers queue behind it.
std::shared_lock<std::shared_mutex> Keystore::ReadLock() const {
  std::lock_guard<std::mutex> gate(gate_);
  return std::shared_lock<std::shared_mutex>(state_mutex_);
}

std::unique_lock<std::shared_mutex> Keystore::WriteLock() const {
  std::lock_guard<std::mutex> gate(gate_);
  return std::unique_lock<std::shared_mutex>(state_mutex_);
}

mikey::crypto::CryptoProvider& Keystore::provider() { return *provider_; }

// ---- catalogue maintenance -------------------------------------------------

Status Keystore::Reconnect() {
  return Guarded("Keystore::Reconnect", [&]() -> Status {
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    // Close everything of ours before the module forgets it.
    catalog_->DropCopies();
    decoy_.reset();
    pool_->CloseIdle();
    { TokenLogin closed = std::move(login_); }
    TKMS_RETURN_IF_ERROR(module_->Reinitialize());
    Result<TokenInfo> token = pkcs11::FindToken(*module_, token_.label);
    if (!token.ok()) return Unavailable("token '" + token_.label + "': " + token.error().message());
    Result<TokenLogin> login = TokenLogin::Open(module_, token->slot_id, pin_);
    if (!login.ok()) return login.error();
    token_ = std::move(*token);
    login_ = std::move(*login);
    pool_ = std::make_unique<SessionPool>(module_, token_.slot_id, pool_->max_sessions(), pool_->wait());
    return RefreshLocked();
  });
}

Status Keystore::RefreshLocked() {
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  Session& session = login_.session();
  Result<std::vector<KeyEntry>> scanned = ScanToken(session);
  if (!scanned.ok()) return scanned.error();
  return catalog_->Replace(session, session_copies_, std::move(*scanned));
}

Result<KeyInfo> Keystore::AddObjectLocked(CK_OBJECT_HANDLE handle) {
  Session& session = login_.session();
  Result<std::optional<KeyEntry>> read = ReadEntry(session, handle);
  if (!read.ok()) return read.error();
  if (!read->has_value()) return Internal("the new object is not a key");
  return catalog_->Add(session, session_copies_, std::move(**read));
}

Status Keystore::Refresh() {
  return Guarded("Keystore::Refresh", [&]() -> Status {
    auto lock = WriteLock();
    return RefreshLocked();
  });
}

Status Keystore::CheckNewKeyLocked(const std::string& label, const Bytes& id, KeyUsage usage) const {
  TKMS_RETURN_IF_ERROR(CheckNewKeyName(label, id, usage));
  return catalog_->CheckUnused(label, id);
}

// ---- using keys ----------------------------------------------------------------

Result<SecretKeyPtr> Keystore::FindSecretKey(const KeySelector& selector) {
  return Guarded("Keystore::FindSecretKey", [&]() -> Result<SecretKeyPtr> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = catalog_->MatchOne(selector, KeyClass::kSecretKey);
    if (!entry.ok()) return entry.error();
    TKMS_RETURN_IF_ERROR(CheckProtected(**entry));
    const size_t size = (*entry)->info.bits / 8;
    return SecretKeyPtr(std::make_unique<TokenSecretKey>(this, std::move(*entry), size));
  });
}

Status Keystore::GenerateRandom(std::span<uint8_t> out) {
  return Guarded("Keystore::GenerateRandom", [&]() -> Status {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    if (out.empty()) return Status::Ok();
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    Session& session = **lease;
    Status status = pkcs11::FromCkRvOperation(
        session.fns().C_GenerateRandom(session.handle(), out.data(), static_cast<CK_ULONG>(out.size())),
        "C_GenerateRandom");
    if (pkcs11::IsRetryable(status)) lease->Discard();
    return status;
  });
}

}  // namespace tkms::keystore
