#include "pkcs11/session.h"

#include <utility>

#include "pkcs11/ck_status.h"

namespace tkms::pkcs11 {

// ---- Session -----------------------------------------------------------------

Result<Session> Session::Open(std::shared_ptr<Module> module, CK_SLOT_ID slot) {
  TKMS_RETURN_IF_ERROR(module->CheckProcess());
  CK_SESSION_HANDLE handle = kInvalidHandle;
  // On an initialised module, a session that cannot be opened is the
  // token's trouble (also for CKR_GENERAL_ERROR): retry later.
  TKMS_RETURN_IF_ERROR(FromCkRvOperation(module->fns().C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                                     nullptr, nullptr, &handle),
                                         "C_OpenSession"));
  return Session(std::move(module), slot, handle);
}

Session::Session(std::shared_ptr<Module> module, CK_SLOT_ID slot, CK_SESSION_HANDLE handle)
    : module_(std::move(module)), slot_(slot), handle_(handle) {}

Session::Session(Session&& other) noexcept
    : module_(std::move(other.module_)), slot_(other.slot_),
      handle_(std::exchange(other.handle_, kInvalidHandle)) {}

Session& Session::operator=(Session&& other) noexcept {
  if (this != &other) {
    Close();
    module_ = std::move(other.module_);
    slot_ = other.slot_;
    handle_ = std::exchange(other.handle_, kInvalidHandle);
  }
  return *this;
}

Session::~Session() { Close(); }

void Session::Close() noexcept {
  if (handle_ == kInvalidHandle) return;
  if (module_->InOwnerProcess()) (void)module_->fns().C_CloseSession(handle_);
  handle_ = kInvalidHandle;
}

// ---- SessionObject ---------------------------------------------------------

SessionObject::SessionObject(SessionObject&& other) noexcept
    : session_(other.session_), handle_(std::exchange(other.handle_, kInvalidHandle)) {}

SessionObject& SessionObject::operator=(SessionObject&& other) noexcept {
  if (this != &other) {
    Destroy();
    session_ = other.session_;
    handle_ = std::exchange(other.handle_, kInvalidHandle);
  }
  return *this;
}

void SessionObject::Destroy() noexcept {
  if (handle_ == kInvalidHandle) return;
  if (session_ != nullptr && session_->valid() && session_->module().InOwnerProcess()) {
    (void)session_->fns().C_DestroyObject(session_->handle(), handle_);
  }
  handle_ = kInvalidHandle;
}

CK_OBJECT_HANDLE SessionObject::Release() noexcept { return std::exchange(handle_, kInvalidHandle); }

// ---- TokenLogin --------------------------------------------------------------

Result<TokenLogin> TokenLogin::Open(std::shared_ptr<Module> module, CK_SLOT_ID slot,
                                    const SecretBytes& pin) {
  Result<Session> session = Session::Open(std::move(module), slot);
  if (!session.ok()) return session.error();
  TokenLogin login(std::move(*session));
  TKMS_RETURN_IF_ERROR(login.Login(CKU_USER, pin));
  return login;
}

TokenLogin::~TokenLogin() {
  if (logged_in_ && session_.valid() && session_.module().InOwnerProcess()) {
    (void)session_.fns().C_Logout(session_.handle());
  }
}

Status TokenLogin::Logout() {
  if (!logged_in_) return Status::Ok();
  logged_in_ = false;
  return FromCkRv(session_.fns().C_Logout(session_.handle()), "C_Logout");
}

Status TokenLogin::Login(CK_USER_TYPE user, const SecretBytes& pin) {
  if (pin.empty()) return InvalidArgument("PIN is empty");
  // Cryptoki takes a non-const pointer but does not write through it.
  TKMS_RETURN_IF_ERROR(FromCkRv(
      session_.fns().C_Login(session_.handle(), user, const_cast<CK_UTF8CHAR*>(pin.data()),
                             static_cast<CK_ULONG>(pin.size())),
      "C_Login"));
  user_ = user;
  logged_in_ = true;
  return Status::Ok();
}

// ---- SessionPool -------------------------------------------------------------

SessionPool::SessionPool(std::shared_ptr<Module> module, CK_SLOT_ID slot, size_t max_sessions,
                         std::chrono::milliseconds wait)
    : module_(std::move(module)), slot_(slot), max_sessions_(max_sessions), wait_(wait) {}

SessionPool::~SessionPool() = default;

SessionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)), session_(std::move(other.session_)),
      discard_(other.discard_) {}

SessionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Return(std::move(session_), discard_);
}

Result<SessionPool::Lease> SessionPool::Acquire() {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + wait_;
  while (idle_.empty() && open_ >= max_sessions_) {
    if (returned_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= max_sessions_) {
      return ResourceExhausted("all " + std::to_string(max_sessions_) +
                               " PKCS#11 sessions stayed busy for " +
                               std::to_string(wait_.count()) + " ms");
    }
  }
  if (!idle_.empty()) {
    Session session = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(session));
  }
  ++open_;  // reserve the slot, then open without holding the lock
  lock.unlock();
  Result<Session> session = Session::Open(module_, slot_);
  if (!session.ok()) {
    lock.lock();
    --open_;
    returned_.notify_one();
    return session.error();
  }
  return Lease(this, std::move(*session));
}

void SessionPool::Return(Session session, bool discard) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (discard || !session.valid()) {
    session.Close();
    --open_;
  } else {
    idle_.push_back(std::move(session));
  }
  returned_.notify_one();
}

void SessionPool::CloseIdle() {
  std::lock_guard<std::mutex> lock(mutex_);
  open_ -= idle_.size();
  idle_.clear();
  returned_.notify_all();
}

size_t SessionPool::open_sessions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return open_;
}

}  // namespace tkms::pkcs11
