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
//
// While the trigger file exists (stat() per wrapped call, read per wrapped
// call), the wrapped functions obey it. The file holds whitespace-separated
// words (at most 512 bytes are read):
//   CODE        the code to return: "CKR_DEVICE_ERROR" (also for an empty
//               file, or an unknown first word), "CKR_DEVICE_REMOVED",
//               "CKR_TOKEN_NOT_PRESENT", "CKR_SESSION_HANDLE_INVALID",
//               "CKR_GENERAL_ERROR", "CKR_HOST_MEMORY" or "CKR_DEVICE_MEMORY"
//               (so `echo CKR_DEVICE_REMOVED > trigger` works);
//   fn=C_X      fail only calls of C_X;
//   site=C_X@OBJ+0xOFF
//               fail only calls of C_X made from that return address: OBJ is
//               the file name (basename) of the calling executable or library
//               and OFF the return address's offset from its load base, as
//               `record` writes them (resolve with addr2line -e OBJ OFF-1);
//   tid=N       fail only calls made by thread N (gettid());
//   skip-tid=N  never fail calls made by thread N (e.g. tkmsd's token monitor);
//   nth=N       fail only the N-th matching call (1-based) counted from the
//               moment this version of the file appeared, then pass through;
//   once        the same as nth=1;
//   record      fail nothing: append one line "C_X@OBJ+0xOFF tid=N" per
//               wrapped call to TRIGGER.sites (discovery of the call sites a
//               workload reaches; the other words are then ignored).
// A "version" of the file is its (device, inode, size, mtime): write a new
// trigger with rename() to restart the nth/once count. When an nth/once
// fault fires, one line "C_X@OBJ+0xOFF tid=N CODE" is appended to
// TRIGGER.fired, so a campaign can see that (and where) it was injected.
// Unknown words after the first are ignored.
//
// Wrapped. Failed by a trigger without fn=/site= (the calls a KMS makes per
// request): C_OpenSession, C_FindObjectsInit, C_GetAttributeValue,
// C_GenerateRandom, C_SignInit, C_Sign, C_SignUpdate, C_SignFinal,
// C_EncryptInit, C_Encrypt, C_EncryptUpdate, C_EncryptFinal, C_DecryptInit,
// C_Decrypt, C_DecryptUpdate, C_DecryptFinal. Failed only when named by fn= or
// site= (key management, log-in and clean-up, so that a blanket trigger still
// lets sessions be closed and operations cleaned up during a fault):
// C_Login, C_Logout, C_CloseSession, C_FindObjects, C_FindObjectsFinal,
// C_CreateObject, C_CopyObject, C_DestroyObject, C_SetAttributeValue,
// C_GenerateKey, C_GenerateKeyPair, C_WrapKey, C_UnwrapKey. Everything else
// (C_Initialize, C_Finalize, C_GetInfo, slot and token queries, ...) and the
// list's version go to the real module unchanged. `record` records every
// wrapped function.
//
// Thread-safety: the shim's configuration is written once under
// std::call_once and only read afterwards; the nth/once counter and the
// .fired append are under one mutex; each .sites line is one O_APPEND
// write(2); the real module's locking covers the rest. No exception leaves a C entry point (CKR_GENERAL_ERROR instead).
// The real module stays loaded for the life of the process (never
// dlclose()d).
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <optional>
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
  std::string sites_file;                  // trigger + ".sites"
  std::string fired_file;                  // trigger + ".fired"
};

std::once_flag g_once;
ShimState g_state;  // written only inside std::call_once(g_once, ...)

// The nth/once counter of the trigger file's current version.
struct Counter {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = -1;
  int64_t mtime_ns = -1;
  uint64_t matched = 0;
};
std::mutex g_counter_mutex;
Counter g_counter;  // guarded by g_counter_mutex

std::string_view Trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n\v\f";
  const size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  const size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

struct Named {
  std::string_view name;
  CK_RV rv;
};
constexpr Named kCodes[] = {
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
};

std::string_view CodeName(CK_RV rv) {
  for (const Named& code : kCodes) {
    if (code.rv == rv) return code.name;
  }
  return "CKR_?";
}

// What the trigger file says.
struct Trigger {
  CK_RV code = kDefaultFault;
  bool record = false;
  std::string_view fn;    // "": any function
  std::string_view site;  // "": any caller ("C_X@OBJ+0xOFF")
  std::optional<long> tid;
  std::optional<long> skip_tid;
  uint64_t nth = 0;  // 0: every matching call
};

std::optional<long> ParseLong(std::string_view text) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  long value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return value;
}

// `text` must outlive the result (the views point into it).
Trigger ParseTrigger(std::string_view text) {
  Trigger t;
  text = Trim(text);
  bool first = true;
  while (!text.empty()) {
    size_t end = text.find_first_of(" \t\r\n\v\f");
    const std::string_view word = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : Trim(text.substr(end));
    if (word == "record") {
      t.record = true;
    } else if (word == "once") {
      t.nth = 1;
    } else if (word.starts_with("fn=")) {
      t.fn = word.substr(3);
    } else if (word.starts_with("site=")) {
      t.site = word.substr(5);
    } else if (word.starts_with("tid=")) {
      t.tid = ParseLong(word.substr(4));
    } else if (word.starts_with("skip-tid=")) {
      t.skip_tid = ParseLong(word.substr(9));
    } else if (word.starts_with("nth=")) {
      const auto n = ParseLong(word.substr(4));
      if (n && *n > 0) t.nth = static_cast<uint64_t>(*n);
    } else if (first) {
      for (const Named& code : kCodes) {
        if (word == code.name) t.code = code.rv;
      }
    }
    first = false;
  }
  return t;
}

// "C_X@OBJ+0xOFF" for a call of `fn` returning to `caller`.
std::string SiteOf(std::string_view fn, const void* caller) {
  std::string site(fn);
  Dl_info info{};
  if (caller != nullptr && dladdr(caller, &info) != 0 && info.dli_fbase != nullptr) {
    const char* name = info.dli_fname != nullptr ? info.dli_fname : "";
    const char* slash = std::strrchr(name, '/');
    if (slash != nullptr) name = slash + 1;
    char offset[32];
    std::snprintf(offset, sizeof(offset), "+0x%" PRIxPTR,
                  reinterpret_cast<uintptr_t>(caller) - reinterpret_cast<uintptr_t>(info.dli_fbase));
    site += "@";
    site += name[0] != '\0' ? name : "exe";
    site += offset;
  } else {
    char address[32];
    std::snprintf(address, sizeof(address), "@?+0x%" PRIxPTR, reinterpret_cast<uintptr_t>(caller));
    site += address;
  }
  return site;
}

long ThreadId() { return static_cast<long>(::syscall(SYS_gettid)); }

// Appends one line (one write(2), O_APPEND) to `path`.
void AppendLine(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return;
  ssize_t n = -1;
  do {
    n = ::write(fd, line.data(), line.size());
  } while (n < 0 && errno == EINTR);
  ::close(fd);
}

// The fault to inject for a call of `fn` (C_X) returning to `caller`: CKR_OK
// while the trigger file is absent or does not select this call. `blanket`:
// the function is failed by a trigger without fn=/site=.
CK_RV ActiveFault(std::string_view fn, bool blanket, const void* caller) {
  const std::string& path = g_state.trigger;
  if (path.empty()) return CKR_OK;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return CKR_OK;
  if (st.st_size == 0) return blanket ? kDefaultFault : CKR_OK;
  char buffer[512];
  ssize_t n = -1;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    do {
      n = ::read(fd, buffer, sizeof(buffer));
    } while (n < 0 && errno == EINTR);
    ::close(fd);
  }
  // Removed (or unreadable) between stat() and read(): it existed, so fail.
  if (n <= 0) return blanket ? kDefaultFault : CKR_OK;
  const Trigger t = ParseTrigger(std::string_view(buffer, static_cast<size_t>(n)));
  const long tid = t.record || t.tid || t.skip_tid || t.nth > 0 ? ThreadId() : 0;
  if (t.record) {
    AppendLine(g_state.sites_file, SiteOf(fn, caller) + " tid=" + std::to_string(tid) + "\n");
    return CKR_OK;
  }
  if (t.fn.empty() && t.site.empty() && !blanket) return CKR_OK;
  if (!t.fn.empty() && t.fn != fn) return CKR_OK;
  if (t.tid && *t.tid != tid) return CKR_OK;
  if (t.skip_tid && *t.skip_tid == tid) return CKR_OK;
  std::string site;
  if (!t.site.empty() || t.nth > 0) {
    site = SiteOf(fn, caller);
    if (!t.site.empty() && t.site != site) return CKR_OK;
  }
  if (t.nth == 0) return t.code;
  {
    const std::lock_guard<std::mutex> lock(g_counter_mutex);
    const int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    Counter& c = g_counter;
    if (c.dev != st.st_dev || c.ino != st.st_ino || c.size != st.st_size || c.mtime_ns != mtime_ns) {
      c = Counter{st.st_dev, st.st_ino, st.st_size, mtime_ns, 0};
    }
    if (++c.matched != t.nth) return CKR_OK;
    AppendLine(g_state.fired_file,
               site + " tid=" + std::to_string(tid) + " " + std::string(CodeName(t.code)) + "\n");
  }
  return t.code;
}

// Faulty<&CK_FUNCTION_LIST::C_X, kName, kBlanket>::Call has exactly the type
// of the C_X member (so UBSan's -fsanitize=function sees the expected type)
// and either injects the fault or forwards to the real module's C_X.
template <auto Member, const char* Name, bool Blanket,
          typename Fn = std::remove_cvref_t<decltype(std::declval<CK_FUNCTION_LIST&>().*Member)>>
struct Faulty;

template <auto Member, const char* Name, bool Blanket, typename... Args>
struct Faulty<Member, Name, Blanket, CK_RV (*)(Args...)> {
  __attribute__((noinline)) static CK_RV Call(Args... args) {
    // The caller inside tkms (this is entered through the function pointer).
    const void* caller = __builtin_extract_return_addr(__builtin_return_address(0));
    try {
      const CK_RV fault = ActiveFault(Name, Blanket, caller);
      if (fault != CKR_OK) return fault;
      return (g_state.real->*Member)(args...);
    } catch (...) {
      return CKR_GENERAL_ERROR;
    }
  }
};

template <auto Member, const char* Name, bool Blanket>
void Wrap(CK_FUNCTION_LIST& list) {
  // A function the real module does not provide stays absent.
  if (g_state.real->*Member != nullptr) list.*Member = &Faulty<Member, Name, Blanket>::Call;
}

// Names with static storage, usable as template arguments.
#define TKMS_FAULT_NAME(fn) constexpr char k##fn[] = #fn;
TKMS_FAULT_NAME(C_OpenSession)
TKMS_FAULT_NAME(C_FindObjectsInit)
TKMS_FAULT_NAME(C_GetAttributeValue)
TKMS_FAULT_NAME(C_GenerateRandom)
TKMS_FAULT_NAME(C_SignInit)
TKMS_FAULT_NAME(C_Sign)
TKMS_FAULT_NAME(C_SignUpdate)
TKMS_FAULT_NAME(C_SignFinal)
TKMS_FAULT_NAME(C_EncryptInit)
TKMS_FAULT_NAME(C_Encrypt)
TKMS_FAULT_NAME(C_EncryptUpdate)
TKMS_FAULT_NAME(C_EncryptFinal)
TKMS_FAULT_NAME(C_DecryptInit)
TKMS_FAULT_NAME(C_Decrypt)
TKMS_FAULT_NAME(C_DecryptUpdate)
TKMS_FAULT_NAME(C_DecryptFinal)
TKMS_FAULT_NAME(C_Login)
TKMS_FAULT_NAME(C_Logout)
TKMS_FAULT_NAME(C_CloseSession)
TKMS_FAULT_NAME(C_FindObjects)
TKMS_FAULT_NAME(C_FindObjectsFinal)
TKMS_FAULT_NAME(C_CreateObject)
TKMS_FAULT_NAME(C_CopyObject)
TKMS_FAULT_NAME(C_DestroyObject)
TKMS_FAULT_NAME(C_SetAttributeValue)
TKMS_FAULT_NAME(C_GenerateKey)
TKMS_FAULT_NAME(C_GenerateKeyPair)
TKMS_FAULT_NAME(C_WrapKey)
TKMS_FAULT_NAME(C_UnwrapKey)
#undef TKMS_FAULT_NAME

// Per-request functions: failed by any trigger. Others: only when named.
#define TKMS_WRAP(fn) Wrap<&CK_FUNCTION_LIST::fn, k##fn, true>(list)
#define TKMS_WRAP_NAMED(fn) Wrap<&CK_FUNCTION_LIST::fn, k##fn, false>(list)

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
  if (!g_state.trigger.empty()) {
    g_state.sites_file = g_state.trigger + ".sites";
    g_state.fired_file = g_state.trigger + ".fired";
  }

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
  TKMS_WRAP(C_OpenSession);
  TKMS_WRAP(C_FindObjectsInit);
  TKMS_WRAP(C_GetAttributeValue);
  TKMS_WRAP(C_GenerateRandom);
  TKMS_WRAP(C_SignInit);
  TKMS_WRAP(C_Sign);
  TKMS_WRAP(C_SignUpdate);
  TKMS_WRAP(C_SignFinal);
  TKMS_WRAP(C_EncryptInit);
  TKMS_WRAP(C_Encrypt);
  TKMS_WRAP(C_EncryptUpdate);
  TKMS_WRAP(C_EncryptFinal);
  TKMS_WRAP(C_DecryptInit);
  TKMS_WRAP(C_Decrypt);
  TKMS_WRAP(C_DecryptUpdate);
  TKMS_WRAP(C_DecryptFinal);
  TKMS_WRAP_NAMED(C_Login);
  TKMS_WRAP_NAMED(C_Logout);
  TKMS_WRAP_NAMED(C_CloseSession);
  TKMS_WRAP_NAMED(C_FindObjects);
  TKMS_WRAP_NAMED(C_FindObjectsFinal);
  TKMS_WRAP_NAMED(C_CreateObject);
  TKMS_WRAP_NAMED(C_CopyObject);
  TKMS_WRAP_NAMED(C_DestroyObject);
  TKMS_WRAP_NAMED(C_SetAttributeValue);
  TKMS_WRAP_NAMED(C_GenerateKey);
  TKMS_WRAP_NAMED(C_GenerateKeyPair);
  TKMS_WRAP_NAMED(C_WrapKey);
  TKMS_WRAP_NAMED(C_UnwrapKey);
  g_state.load_rv = CKR_OK;
}
#undef TKMS_WRAP
#undef TKMS_WRAP_NAMED

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
