// tkms_fault_pkcs11: a PKCS#11 module that makes "the token" fail on demand.
//
// Why: the KMS must answer HTTP 503 while its token has trouble (a device
// error, the HSM unplugged, sessions lost) and must recover by itself once
// the token is back, without a restart. SoftHSM2 never fails like that, so
// integration tests load THIS module instead: it forwards every call to the
// real module and, while a trigger file exists, answers the per-request
// operations with a device-trouble code instead of calling the real module.
//
// TEST ONLY. It must never be shipped, installed or configured on an
// appliance: anyone able to create the trigger file could stop the KMS. The
// build has no install() rule for it and it lives under tests/.
//
// Environment (read once, when C_GetFunctionList is first called):
//   TKMS_FAULT_REAL_MODULE  the module to forward to (default
//                           /usr/lib/softhsm/libsofthsm2.so)
//   TKMS_FAULT_TRIGGER      path of the trigger file; unset or empty: never
//                           fail (a pure pass-through)
// While the trigger file exists (stat() per wrapped call), each wrapped
// function returns the code the file names: "CKR_DEVICE_ERROR" (also for an
// empty file, or unknown text), "CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT",
// "CKR_SESSION_HANDLE_INVALID" or "CKR_GENERAL_ERROR" (surrounding
// whitespace ignored, so `echo CKR_DEVICE_REMOVED > trigger` works).
//
// Wrapped (the calls a KMS makes per request): C_OpenSession,
// C_FindObjectsInit, C_GetAttributeValue, C_GenerateRandom, C_SignInit,
// C_Sign, C_SignUpdate, C_SignFinal, C_EncryptInit, C_Encrypt,
// C_EncryptUpdate, C_EncryptFinal, C_DecryptInit, C_Decrypt, C_DecryptUpdate,
// C_DecryptFinal. Everything else (C_Initialize, C_Finalize, C_GetInfo, slot
// and token queries, C_Login, C_CloseSession, C_FindObjects(Final), key
// management, ...) and the list's version go to the real module unchanged,
// so sessions can still be closed and operations cleaned up during a fault.
//
// Thread-safety: the shim's own state is written once under std::call_once
// and only read afterwards; the real module's locking covers the rest. No
// exception leaves a C entry point (CKR_GENERAL_ERROR instead). The real
// module stays loaded for the life of the process (never dlclose()d).
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "pkcs11/pkcs11_api.h"

namespace {

constexpr const char* kDefaultRealModule = "/usr/lib/softhsm/libsofthsm2.so";
constexpr CK_RV kDefaultFault = CKR_DEVICE_ERROR;

struct ShimState {
  CK_RV load_rv = CKR_GENERAL_ERROR;
  const CK_FUNCTION_LIST* real = nullptr;  // the real module's list
  CK_FUNCTION_LIST wrapped{};              // what C_GetFunctionList hands out
  std::string trigger;                     // empty: never fail
};

std::once_flag g_once;
ShimState g_state;  // written only inside std::call_once(g_once, ...)

std::string_view Trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

CK_RV ParseFault(std::string_view text) {
  struct Named {
    std::string_view name;
    CK_RV rv;
  };
  static constexpr Named kCodes[] = {
      {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
      {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
      {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
      {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
      {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
  };
  text = Trim(text);
  for (const Named& code : kCodes) {
    if (text == code.name) return code.rv;
  }
  return kDefaultFault;
}

// The fault to inject now: CKR_OK while the trigger file is absent.
CK_RV ActiveFault() {
  const std::string& trigger = g_state.trigger;
  if (trigger.empty()) return CKR_OK;
  struct stat st {};
  if (::stat(trigger.c_str(), &st) != 0) return CKR_OK;
  if (st.st_size == 0) return kDefaultFault;
  char buffer[64];
  ssize_t n = -1;
  const int fd = ::open(trigger.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    do {
      n = ::read(fd, buffer, sizeof(buffer));
    } while (n < 0 && errno == EINTR);
    ::close(fd);
  }
  // Removed (or unreadable) between stat() and read(): it existed, so fail.
  if (n <= 0) return kDefaultFault;
  return ParseFault(std::string_view(buffer, static_cast<size_t>(n)));
}

// Faulty<&CK_FUNCTION_LIST::C_X>::Call has exactly the type of the C_X
// member (so UBSan's -fsanitize=function sees the expected type) and either
// injects the fault or forwards to the real module's C_X.
template <auto Member,
          typename Fn = std::remove_cvref_t<decltype(std::declval<CK_FUNCTION_LIST&>().*Member)>>
struct Faulty;

template <auto Member, typename... Args>
struct Faulty<Member, CK_RV (*)(Args...)> {
  static CK_RV Call(Args... args) {
    try {
      const CK_RV fault = ActiveFault();
      if (fault != CKR_OK) return fault;
      return (g_state.real->*Member)(args...);
    } catch (...) {
      return CKR_GENERAL_ERROR;
    }
  }
};

template <auto Member>
void Wrap(CK_FUNCTION_LIST& list) {
  // A function the real module does not provide stays absent.
  if (g_state.real->*Member != nullptr) list.*Member = &Faulty<Member>::Call;
}

std::string EnvOr(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? std::string(value) : std::string(fallback);
}

void LoadFailed(const std::string& message) {
  // One line, once per process (the result is cached).
  std::fprintf(stderr, "tkms_fault_pkcs11: %s\n", message.c_str());
}

void Load() {
  const std::string path = EnvOr("TKMS_FAULT_REAL_MODULE", kDefaultRealModule);
  g_state.trigger = EnvOr("TKMS_FAULT_TRIGGER", "");

  dlerror();
  // Never closed: the wrapped list points into it for the life of the process.
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* error = dlerror();
    LoadFailed("cannot load real PKCS#11 module '" + path +
               "' (TKMS_FAULT_REAL_MODULE): " + (error != nullptr ? error : "unknown error"));
    return;
  }
  void* symbol = dlsym(library, "C_GetFunctionList");
  if (symbol == nullptr) {
    LoadFailed("'" + path + "' (TKMS_FAULT_REAL_MODULE) is not a PKCS#11 module: no C_GetFunctionList");
    return;
  }
  CK_C_GetFunctionList get_function_list = nullptr;
  static_assert(sizeof(get_function_list) == sizeof(symbol));
  std::memcpy(&get_function_list, &symbol, sizeof(symbol));
  if (get_function_list == &C_GetFunctionList) {
    LoadFailed("TKMS_FAULT_REAL_MODULE '" + path + "' is the fault module itself");
    return;
  }
  CK_FUNCTION_LIST* real = nullptr;
  const CK_RV rv = get_function_list(&real);
  if (rv != CKR_OK || real == nullptr) {
    LoadFailed("C_GetFunctionList of '" + path + "' failed (rv 0x" + [rv] {
      char hex[2 * sizeof(CK_RV) + 1];
      std::snprintf(hex, sizeof(hex), "%lx", static_cast<unsigned long>(rv));
      return std::string(hex);
    }() + ")");
    return;
  }

  g_state.real = real;
  CK_FUNCTION_LIST& list = g_state.wrapped;
  list = *real;  // version and every pass-through function
  list.C_GetFunctionList = &C_GetFunctionList;
  Wrap<&CK_FUNCTION_LIST::C_OpenSession>(list);
  Wrap<&CK_FUNCTION_LIST::C_FindObjectsInit>(list);
  Wrap<&CK_FUNCTION_LIST::C_GetAttributeValue>(list);
  Wrap<&CK_FUNCTION_LIST::C_GenerateRandom>(list);
  Wrap<&CK_FUNCTION_LIST::C_SignInit>(list);
  Wrap<&CK_FUNCTION_LIST::C_Sign>(list);
  Wrap<&CK_FUNCTION_LIST::C_SignUpdate>(list);
  Wrap<&CK_FUNCTION_LIST::C_SignFinal>(list);
  Wrap<&CK_FUNCTION_LIST::C_EncryptInit>(list);
  Wrap<&CK_FUNCTION_LIST::C_Encrypt>(list);
  Wrap<&CK_FUNCTION_LIST::C_EncryptUpdate>(list);
  Wrap<&CK_FUNCTION_LIST::C_EncryptFinal>(list);
  Wrap<&CK_FUNCTION_LIST::C_DecryptInit>(list);
  Wrap<&CK_FUNCTION_LIST::C_Decrypt>(list);
  Wrap<&CK_FUNCTION_LIST::C_DecryptUpdate>(list);
  Wrap<&CK_FUNCTION_LIST::C_DecryptFinal>(list);
  g_state.load_rv = CKR_OK;
}

}  // namespace

// The module's only export (PKCS#11 v2.40 §5.4; declared extern "C" by the
// Cryptoki header).
extern "C" __attribute__((visibility("default"))) CK_RV C_GetFunctionList(
    CK_FUNCTION_LIST_PTR_PTR function_list) {
  try {
    if (function_list == nullptr) return CKR_ARGUMENTS_BAD;
    std::call_once(g_once, [] {
      try {
        Load();
      } catch (...) {
        // g_state.load_rv stays CKR_GENERAL_ERROR.
        std::fputs("tkms_fault_pkcs11: unexpected failure while loading the real module\n",
                   stderr);
      }
    });
    if (g_state.load_rv != CKR_OK) return g_state.load_rv;
    *function_list = &g_state.wrapped;
    return CKR_OK;
  } catch (...) {
    return CKR_GENERAL_ERROR;
  }
}
