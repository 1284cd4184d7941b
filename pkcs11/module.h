// Module: one loaded PKCS#11 library (a "Cryptoki" module, PKCS#11 v2.40
// §5.4 C_Initialize / C_Finalize / C_GetFunctionList).
//
// Why: tkms talks to whatever module the appliance is configured with (SoftHSM2
// in CI, the HSM vendor's library on the appliance), so the library is loaded
// by path with dlopen() and reached only through its CK_FUNCTION_LIST. Module
// owns that library: Load() initialises it once with CKF_OS_LOCKING_OK (the
// module uses native locks, tkms calls it from several threads, and no C
// callback of ours is ever handed to it), the destructor finalises it.
//
// One Module per library per process: Cryptoki is initialised per process, so
// a second Load() of the same library while the first Module lives fails with
// kFailedPrecondition (CKR_CRYPTOKI_ALREADY_INITIALIZED). Share the
// std::shared_ptr<Module> instead; sessions keep it alive.
//
// fork(): a child does not inherit a usable Cryptoki library (v2.40 §6.7.1).
// The Module remembers the pid that initialised it; CheckProcess() fails in
// any other process, every keystore entry point calls it, and a Module (or
// Session) destroyed in a child leaves the library alone. A child must load
// its own Module (re-open the keystore).
//
// Thread-safety: all members are const after Load() and may be used
// concurrently.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "firmware/base/status.h"
#include "pkcs11/pkcs11_api.h"

namespace tkms::pkcs11 {

// What C_GetInfo reports about the library (blank padding removed).
struct ModuleInfo {
  std::string manufacturer;
  std::string description;
  unsigned library_major = 0;
  unsigned library_minor = 0;
  unsigned cryptoki_major = 0;
  unsigned cryptoki_minor = 0;
};

class Module final : public std::enable_shared_from_this<Module> {
 public:
  // Loads and initialises the PKCS#11 library at `path`. Errors:
  //   kInvalidArgument     empty path
  //   kFailedPrecondition  file missing or unreadable, not a loadable shared
  //                        library, not a PKCS#11 library (no
  //                        C_GetFunctionList), already initialised in this
  //                        process, or C_Initialize refused (the module is
  //                        misconfigured, e.g. SOFTHSM2_CONF)
  static Result<std::shared_ptr<Module>> Load(const std::string& path);

  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // The module's function table. Valid for the Module's lifetime.
  CK_FUNCTION_LIST& fns() const { return *fns_; }
  const std::string& path() const { return path_; }
  const ModuleInfo& info() const { return info_; }

  // C_Finalize then C_Initialize (PKCS#11 v2.40 §5.4): every session and
  // object handle of this process becomes invalid, and the module reads its
  // tokens afresh. The way back for a token that vanished and returned (a
  // module such as SoftHSM2 2.6.1 marks a token whose storage disappeared
  // invalid until it is initialised again). Callers must have closed their
  // sessions first; kUnavailable if C_Initialize fails.
  Status Reinitialize();

  // Ok in the process that loaded the module; FailedPrecondition("PKCS#11
  // module used after fork(): re-open the keystore in the child") elsewhere.
  Status CheckProcess() const;
  bool InOwnerProcess() const;

 private:
  struct PassKey {};  // restricts construction to Load()

 public:
  Module(PassKey, void* library, CK_FUNCTION_LIST* fns, std::string path, ModuleInfo info);

 private:
  void* library_ = nullptr;
  CK_FUNCTION_LIST* fns_ = nullptr;
  std::string path_;
  ModuleInfo info_;
  pid_t owner_pid_ = 0;
};

// Copies a blank-padded, not NUL-terminated PKCS#11 text field (CK_UTF8CHAR
// label[32] and friends), dropping trailing blanks and NULs.
std::string TrimPadded(const unsigned char* field, size_t size);

}  // namespace tkms::pkcs11
