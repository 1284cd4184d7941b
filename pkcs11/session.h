// Sessions: RAII owners for PKCS#11 session handles (v2.40 §5.6
// C_OpenSession / C_CloseSession / C_Login / C_Logout), session objects
// (CKA_TOKEN = FALSE, §4.4), and the bounded pool the keystore's worker
// threads draw from.
//
// Why: a session handle must be closed exactly once and never used by two
// threads at the same time (an active operation is per-session state, §5.2).
// Session is a move-only owner; SessionObject destroys a session object when
// it goes out of scope; SessionPool hands each operation a session of its own
// and bounds how many are open.
//
// Login belongs to the token, not to a session (§5.6 C_Login: "the user is
// logged in ... for all sessions of the application"; SoftHSM2 ends it when
// the application's last session on the token closes). TokenLogin is the one
// pinned session that holds it: opened first, logged in, closed last.
//
// Every session is read/write and serial: SoftHSM2 refuses an SO login while
// read-only sessions exist (CKR_SESSION_READ_ONLY_EXISTS), and the keystore's
// SO path needs one. No notification callback is passed to C_OpenSession, so
// no C callback of ours exists for an exception to cross.
//
// After fork(), destructors in the child do not call into the module (see
// Module::CheckProcess).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "pkcs11/module.h"
#include "pkcs11/pkcs11_api.h"

namespace tkms::pkcs11 {

// Session owns one read/write PKCS#11 session and closes it exactly once.
// Move-only; a moved-from Session holds no handle. It keeps its Module alive.
// Not thread-safe: one thread at a time.
class Session final {
 public:
  // C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION).
  static Result<Session> Open(std::shared_ptr<Module> module, CK_SLOT_ID slot);

  Session() = default;
  Session(Session&& other) noexcept;
  Session& operator=(Session&& other) noexcept;
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;
  ~Session();

  bool valid() const { return handle_ != kInvalidHandle; }
  CK_SESSION_HANDLE handle() const { return handle_; }
  CK_SLOT_ID slot() const { return slot_; }
  CK_FUNCTION_LIST& fns() const { return module_->fns(); }
  Module& module() const { return *module_; }

  // Closes now (idempotent). Skipped in a forked child.
  void Close() noexcept;

 private:
  Session(std::shared_ptr<Module> module, CK_SLOT_ID slot, CK_SESSION_HANDLE handle);

  std::shared_ptr<Module> module_;
  CK_SLOT_ID slot_ = 0;
  CK_SESSION_HANDLE handle_ = kInvalidHandle;
};

// SessionObject destroys a session object (CKA_TOKEN = FALSE: an unwrapped or
// copied key) on scope exit. It borrows `session`, which must outlive it; the
// object must have been created in that session (or another session of the
// same application). Move-only.
class SessionObject final {
 public:
  SessionObject() = default;
  SessionObject(const Session& session, CK_OBJECT_HANDLE handle)
      : session_(&session), handle_(handle) {}
  SessionObject(SessionObject&& other) noexcept;
  SessionObject& operator=(SessionObject&& other) noexcept;
  SessionObject(const SessionObject&) = delete;
  SessionObject& operator=(const SessionObject&) = delete;
  ~SessionObject() { Destroy(); }

  CK_OBJECT_HANDLE handle() const { return handle_; }
  bool valid() const { return handle_ != kInvalidHandle; }
  // C_DestroyObject now (idempotent; errors ignored: the object may already
  // be gone with its session or login).
  void Destroy() noexcept;
  // Stops owning the object (it becomes the caller's, or the token's).
  CK_OBJECT_HANDLE Release() noexcept;

 private:
  const Session* session_ = nullptr;
  CK_OBJECT_HANDLE handle_ = kInvalidHandle;
};

// TokenLogin: the pinned session that keeps the user (or SO) logged in to
// one token. The login lasts while this session (or any other session of the
// process on the token) is open. Destruction logs out and closes.
// Not thread-safe; the keystore uses it under its exclusive lock.
class TokenLogin final {
 public:
  // Opens the pinned session and C_Login(CKU_USER, pin). A wrong PIN gives
  // kPermissionDenied "C_Login failed: CKR_PIN_INCORRECT (0xa0)"; a login
  // already held by this process gives kFailedPrecondition
  // (CKR_USER_ALREADY_LOGGED_IN: the PIN was not checked, so it is not
  // accepted as a login).
  static Result<TokenLogin> Open(std::shared_ptr<Module> module, CK_SLOT_ID slot,
                                 const SecretBytes& pin);

  TokenLogin(TokenLogin&&) noexcept = default;
  TokenLogin& operator=(TokenLogin&&) noexcept = default;
  ~TokenLogin();

  Session& session() { return session_; }
  const Session& session() const { return session_; }
  CK_USER_TYPE user() const { return user_; }
  bool logged_in() const { return logged_in_; }

  // C_Logout (the login of every session of this process on the token ends;
  // the token destroys private session objects).
  Status Logout();
  // C_Login(user, pin) on the pinned session.
  Status Login(CK_USER_TYPE user, const SecretBytes& pin);

 private:
  explicit TokenLogin(Session session) : session_(std::move(session)) {}

  Session session_;
  CK_USER_TYPE user_ = CKU_USER;
  bool logged_in_ = false;
};

// SessionPool: at most `max_sessions` sessions on one slot, opened lazily and
// reused. Acquire() hands out an idle session, opens a new one below the
// limit, or waits up to `wait` for one to come back, then fails with
// kResourceExhausted. (Blocking briefly smooths bursts; the bound keeps a
// stuck token from piling up threads forever.) A Lease returns its session on
// destruction; Discard() closes it instead (after a session-level failure).
// Thread-safe. Leases must not outlive the pool.
class SessionPool final {
 public:
  class Lease final {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

    Session& operator*() { return session_; }
    Session* operator->() { return &session_; }
    // Close the session instead of returning it to the pool.
    void Discard() { discard_ = true; }

   private:
    friend class SessionPool;
    Lease(SessionPool* pool, Session session) : pool_(pool), session_(std::move(session)) {}

    SessionPool* pool_;
    Session session_;
    bool discard_ = false;
  };

  SessionPool(std::shared_ptr<Module> module, CK_SLOT_ID slot, size_t max_sessions,
              std::chrono::milliseconds wait);
  ~SessionPool();
  SessionPool(const SessionPool&) = delete;
  SessionPool& operator=(const SessionPool&) = delete;

  Result<Lease> Acquire();
  // Closes every idle session (leased ones close when returned).
  void CloseIdle();

  size_t max_sessions() const { return max_sessions_; }
  std::chrono::milliseconds wait() const { return wait_; }
  size_t open_sessions() const;

 private:
  void Return(Session session, bool discard);

  const std::shared_ptr<Module> module_;
  const CK_SLOT_ID slot_;
  const size_t max_sessions_;
  const std::chrono::milliseconds wait_;

  mutable std::mutex mutex_;
  std::condition_variable returned_;
  std::vector<Session> idle_;  // guarded by mutex_
  size_t open_ = 0;            // sessions open, idle or leased; guarded by mutex_
};

}  // namespace tkms::pkcs11
