#include "pkcs11/module.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "pkcs11/ck_status.h"

namespace tkms::pkcs11 {
namespace {

// Closes a dlopen() handle unless released.
class LibraryGuard {
 public:
  explicit LibraryGuard(void* library) : library_(library) {}
  ~LibraryGuard() {
    if (library_ != nullptr) dlclose(library_);
  }
  LibraryGuard(const LibraryGuard&) = delete;
  LibraryGuard& operator=(const LibraryGuard&) = delete;
  void* release() { return std::exchange(library_, nullptr); }

 private:
  void* library_;
};

std::string DlError() {
  const char* text = dlerror();
  return text != nullptr ? std::string(text) : std::string("unknown dlopen error");
}

}  // namespace

std::string TrimPadded(const unsigned char* field, size_t size) {
  size_t n = size;
  while (n > 0 && (field[n - 1] == ' ' || field[n - 1] == '\0')) --n;
  return std::string(reinterpret_cast<const char*>(field), n);
}

Result<std::shared_ptr<Module>> Module::Load(const std::string& path) {
  if (path.empty()) return InvalidArgument("PKCS#11 module path is empty");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    return FailedPrecondition("PKCS#11 module " + path + " not found: " + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    return FailedPrecondition("PKCS#11 module " + path + " is not a regular file");
  }

  // RTLD_LOCAL keeps the module's symbols (and its OpenSSL) out of our global
  // namespace. RTLD_NODELETE keeps the code mapped after dlclose(): modules
  // (and the crypto libraries they load) register atexit handlers and
  // thread-local destructors that must still find their code at exit, and
  // leak reports stay symbolised.
  dlerror();
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
  if (library == nullptr) {
    return FailedPrecondition("cannot load PKCS#11 module " + path + ": " + DlError());
  }
  LibraryGuard guard(library);

  dlerror();
  void* symbol = dlsym(library, "C_GetFunctionList");
  if (symbol == nullptr) {
    return FailedPrecondition(path + " is not a PKCS#11 module (it has no C_GetFunctionList)");
  }
  CK_C_GetFunctionList get_function_list = nullptr;
  static_assert(sizeof(get_function_list) == sizeof(symbol));
  std::memcpy(&get_function_list, &symbol, sizeof(symbol));

  CK_FUNCTION_LIST* fns = nullptr;
  TKMS_RETURN_IF_ERROR(FromCkRv(get_function_list(&fns), "C_GetFunctionList"));
  if (fns == nullptr || fns->C_Initialize == nullptr) {
    return FailedPrecondition(path + " returned no PKCS#11 function list");
  }
  if (fns->version.major != 2) {
    return FailedPrecondition(path + " implements Cryptoki " + std::to_string(fns->version.major) +
                              "." + std::to_string(fns->version.minor) + "; 2.x is required");
  }

  // No mutex callbacks: the module uses OS locking; nothing of ours is ever
  // called back from C.
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = fns->C_Initialize(&args);
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    // Not finalised here: the library belongs to whoever initialised it.
    return FailedPrecondition("PKCS#11 module " + path +
                              " is already initialised in this process: load one Module per "
                              "library and share it");
  }
  if (rv != CKR_OK) {
    Status status = FromCkRv(rv, "C_Initialize");
    return Status(status.code() == StatusCode::kUnavailable ? StatusCode::kUnavailable
                                                            : StatusCode::kFailedPrecondition,
                  status.message() + " (PKCS#11 module " + path + "; check its configuration)");
  }

  ModuleInfo info;
  CK_INFO ck_info{};
  if (fns->C_GetInfo(&ck_info) == CKR_OK) {
    info.manufacturer = TrimPadded(ck_info.manufacturerID, sizeof(ck_info.manufacturerID));
    info.description = TrimPadded(ck_info.libraryDescription, sizeof(ck_info.libraryDescription));
    info.library_major = ck_info.libraryVersion.major;
    info.library_minor = ck_info.libraryVersion.minor;
    info.cryptoki_major = ck_info.cryptokiVersion.major;
    info.cryptoki_minor = ck_info.cryptokiVersion.minor;
  }
  return std::make_shared<Module>(PassKey{}, guard.release(), fns, path, std::move(info));
}

Module::Module(PassKey, void* library, CK_FUNCTION_LIST* fns, std::string path, ModuleInfo info)
    : library_(library), fns_(fns), path_(std::move(path)), info_(std::move(info)),
      owner_pid_(::getpid()) {}

Status Module::Reinitialize() {
  TKMS_RETURN_IF_ERROR(CheckProcess());
  (void)fns_->C_Finalize(nullptr);
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  const CK_RV rv = fns_->C_Initialize(&args);
  if (rv != CKR_OK) {
    Status status = FromCkRv(rv, "C_Initialize");
    return Unavailable(status.message() + " (PKCS#11 module " + path_ + ")");
  }
  return Status::Ok();
}

Module::~Module() {
  // In a forked child the library state is the parent's: leave it alone.
  if (!InOwnerProcess()) return;
  (void)fns_->C_Finalize(nullptr);
  dlclose(library_);
}

namespace {
// getpid() is a system call; it is asked once per process and again only in
// a child after fork() (pthread_atfork), so the per-operation check is a load.
std::atomic<pid_t> g_cached_pid{0};
void ForgetPid() { g_cached_pid.store(0, std::memory_order_relaxed); }
pid_t CurrentPid() {
  pid_t pid = g_cached_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    static const int registered = ::pthread_atfork(nullptr, nullptr, &ForgetPid);
    (void)registered;
    pid = ::getpid();
    g_cached_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}
}  // namespace

bool Module::InOwnerProcess() const { return CurrentPid() == owner_pid_; }

Status Module::CheckProcess() const {
  if (InOwnerProcess()) return Status::Ok();
  return FailedPrecondition("PKCS#11 module used after fork(): re-open the keystore in the child");
}

}  // namespace tkms::pkcs11
