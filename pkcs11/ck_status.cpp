#include "pkcs11/ck_status.h"

#include <cstdio>
#include <string>

namespace tkms::pkcs11 {
namespace {

struct CkrEntry {
  CK_RV rv;
  std::string_view name;
  StatusCode code;
};

// PKCS#11 v2.40 §5.1 return values. Codes not listed map to kInternal.
constexpr CkrEntry kCkrTable[] = {
    {CKR_OK, "CKR_OK", StatusCode::kOk},
    {CKR_CANCEL, "CKR_CANCEL", StatusCode::kInternal},
    {CKR_HOST_MEMORY, "CKR_HOST_MEMORY", StatusCode::kResourceExhausted},
    {CKR_SLOT_ID_INVALID, "CKR_SLOT_ID_INVALID", StatusCode::kUnavailable},
    {CKR_GENERAL_ERROR, "CKR_GENERAL_ERROR", StatusCode::kInternal},
    {CKR_FUNCTION_FAILED, "CKR_FUNCTION_FAILED", StatusCode::kInternal},
    {CKR_ARGUMENTS_BAD, "CKR_ARGUMENTS_BAD", StatusCode::kInvalidArgument},
    {CKR_NO_EVENT, "CKR_NO_EVENT", StatusCode::kInternal},
    {CKR_NEED_TO_CREATE_THREADS, "CKR_NEED_TO_CREATE_THREADS", StatusCode::kFailedPrecondition},
    {CKR_CANT_LOCK, "CKR_CANT_LOCK", StatusCode::kFailedPrecondition},
    {CKR_ATTRIBUTE_READ_ONLY, "CKR_ATTRIBUTE_READ_ONLY", StatusCode::kFailedPrecondition},
    {CKR_ATTRIBUTE_SENSITIVE, "CKR_ATTRIBUTE_SENSITIVE", StatusCode::kFailedPrecondition},
    {CKR_ATTRIBUTE_TYPE_INVALID, "CKR_ATTRIBUTE_TYPE_INVALID", StatusCode::kFailedPrecondition},
    {CKR_ATTRIBUTE_VALUE_INVALID, "CKR_ATTRIBUTE_VALUE_INVALID", StatusCode::kInvalidArgument},
    {CKR_ACTION_PROHIBITED, "CKR_ACTION_PROHIBITED", StatusCode::kFailedPrecondition},
    {CKR_DATA_INVALID, "CKR_DATA_INVALID", StatusCode::kInvalidArgument},
    {CKR_DATA_LEN_RANGE, "CKR_DATA_LEN_RANGE", StatusCode::kInvalidArgument},
    {CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR", StatusCode::kUnavailable},
    {CKR_DEVICE_MEMORY, "CKR_DEVICE_MEMORY", StatusCode::kUnavailable},
    {CKR_DEVICE_REMOVED, "CKR_DEVICE_REMOVED", StatusCode::kUnavailable},
    {CKR_ENCRYPTED_DATA_INVALID, "CKR_ENCRYPTED_DATA_INVALID", StatusCode::kInvalidArgument},
    {CKR_ENCRYPTED_DATA_LEN_RANGE, "CKR_ENCRYPTED_DATA_LEN_RANGE", StatusCode::kInvalidArgument},
    {CKR_FUNCTION_CANCELED, "CKR_FUNCTION_CANCELED", StatusCode::kInternal},
    {CKR_FUNCTION_NOT_PARALLEL, "CKR_FUNCTION_NOT_PARALLEL", StatusCode::kInternal},
    {CKR_FUNCTION_NOT_SUPPORTED, "CKR_FUNCTION_NOT_SUPPORTED", StatusCode::kFailedPrecondition},
    {CKR_KEY_HANDLE_INVALID, "CKR_KEY_HANDLE_INVALID", StatusCode::kNotFound},
    {CKR_KEY_SIZE_RANGE, "CKR_KEY_SIZE_RANGE", StatusCode::kFailedPrecondition},
    {CKR_KEY_TYPE_INCONSISTENT, "CKR_KEY_TYPE_INCONSISTENT", StatusCode::kFailedPrecondition},
    {CKR_KEY_NOT_NEEDED, "CKR_KEY_NOT_NEEDED", StatusCode::kInvalidArgument},
    {CKR_KEY_CHANGED, "CKR_KEY_CHANGED", StatusCode::kFailedPrecondition},
    {CKR_KEY_NEEDED, "CKR_KEY_NEEDED", StatusCode::kFailedPrecondition},
    {CKR_KEY_INDIGESTIBLE, "CKR_KEY_INDIGESTIBLE", StatusCode::kFailedPrecondition},
    {CKR_KEY_FUNCTION_NOT_PERMITTED, "CKR_KEY_FUNCTION_NOT_PERMITTED", StatusCode::kFailedPrecondition},
    {CKR_KEY_NOT_WRAPPABLE, "CKR_KEY_NOT_WRAPPABLE", StatusCode::kFailedPrecondition},
    {CKR_KEY_UNEXTRACTABLE, "CKR_KEY_UNEXTRACTABLE", StatusCode::kFailedPrecondition},
    {CKR_MECHANISM_INVALID, "CKR_MECHANISM_INVALID", StatusCode::kFailedPrecondition},
    {CKR_MECHANISM_PARAM_INVALID, "CKR_MECHANISM_PARAM_INVALID", StatusCode::kInvalidArgument},
    {CKR_OBJECT_HANDLE_INVALID, "CKR_OBJECT_HANDLE_INVALID", StatusCode::kNotFound},
    {CKR_OPERATION_ACTIVE, "CKR_OPERATION_ACTIVE", StatusCode::kInternal},
    {CKR_OPERATION_NOT_INITIALIZED, "CKR_OPERATION_NOT_INITIALIZED", StatusCode::kInternal},
    {CKR_PIN_INCORRECT, "CKR_PIN_INCORRECT", StatusCode::kPermissionDenied},
    {CKR_PIN_INVALID, "CKR_PIN_INVALID", StatusCode::kInvalidArgument},
    {CKR_PIN_LEN_RANGE, "CKR_PIN_LEN_RANGE", StatusCode::kInvalidArgument},
    {CKR_PIN_EXPIRED, "CKR_PIN_EXPIRED", StatusCode::kPermissionDenied},
    {CKR_PIN_LOCKED, "CKR_PIN_LOCKED", StatusCode::kPermissionDenied},
    {CKR_SESSION_CLOSED, "CKR_SESSION_CLOSED", StatusCode::kUnavailable},
    {CKR_SESSION_COUNT, "CKR_SESSION_COUNT", StatusCode::kUnavailable},
    {CKR_SESSION_HANDLE_INVALID, "CKR_SESSION_HANDLE_INVALID", StatusCode::kUnavailable},
    {CKR_SESSION_PARALLEL_NOT_SUPPORTED, "CKR_SESSION_PARALLEL_NOT_SUPPORTED",
     StatusCode::kFailedPrecondition},
    {CKR_SESSION_READ_ONLY, "CKR_SESSION_READ_ONLY", StatusCode::kInternal},
    {CKR_SESSION_EXISTS, "CKR_SESSION_EXISTS", StatusCode::kFailedPrecondition},
    {CKR_SESSION_READ_ONLY_EXISTS, "CKR_SESSION_READ_ONLY_EXISTS", StatusCode::kFailedPrecondition},
    {CKR_SESSION_READ_WRITE_SO_EXISTS, "CKR_SESSION_READ_WRITE_SO_EXISTS",
     StatusCode::kFailedPrecondition},
    {CKR_SIGNATURE_INVALID, "CKR_SIGNATURE_INVALID", StatusCode::kPermissionDenied},
    {CKR_SIGNATURE_LEN_RANGE, "CKR_SIGNATURE_LEN_RANGE", StatusCode::kPermissionDenied},
    {CKR_TEMPLATE_INCOMPLETE, "CKR_TEMPLATE_INCOMPLETE", StatusCode::kInternal},
    {CKR_TEMPLATE_INCONSISTENT, "CKR_TEMPLATE_INCONSISTENT", StatusCode::kFailedPrecondition},
    {CKR_TOKEN_NOT_PRESENT, "CKR_TOKEN_NOT_PRESENT", StatusCode::kUnavailable},
    {CKR_TOKEN_NOT_RECOGNIZED, "CKR_TOKEN_NOT_RECOGNIZED", StatusCode::kFailedPrecondition},
    {CKR_TOKEN_WRITE_PROTECTED, "CKR_TOKEN_WRITE_PROTECTED", StatusCode::kFailedPrecondition},
    {CKR_UNWRAPPING_KEY_HANDLE_INVALID, "CKR_UNWRAPPING_KEY_HANDLE_INVALID", StatusCode::kNotFound},
    {CKR_UNWRAPPING_KEY_SIZE_RANGE, "CKR_UNWRAPPING_KEY_SIZE_RANGE", StatusCode::kFailedPrecondition},
    {CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT, "CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT",
     StatusCode::kFailedPrecondition},
    {CKR_USER_ALREADY_LOGGED_IN, "CKR_USER_ALREADY_LOGGED_IN", StatusCode::kFailedPrecondition},
    {CKR_USER_NOT_LOGGED_IN, "CKR_USER_NOT_LOGGED_IN", StatusCode::kPermissionDenied},
    {CKR_USER_PIN_NOT_INITIALIZED, "CKR_USER_PIN_NOT_INITIALIZED", StatusCode::kFailedPrecondition},
    {CKR_USER_TYPE_INVALID, "CKR_USER_TYPE_INVALID", StatusCode::kInvalidArgument},
    {CKR_USER_ANOTHER_ALREADY_LOGGED_IN, "CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
     StatusCode::kFailedPrecondition},
    {CKR_USER_TOO_MANY_TYPES, "CKR_USER_TOO_MANY_TYPES", StatusCode::kFailedPrecondition},
    {CKR_WRAPPED_KEY_INVALID, "CKR_WRAPPED_KEY_INVALID", StatusCode::kInvalidArgument},
    {CKR_WRAPPED_KEY_LEN_RANGE, "CKR_WRAPPED_KEY_LEN_RANGE", StatusCode::kInvalidArgument},
    {CKR_WRAPPING_KEY_HANDLE_INVALID, "CKR_WRAPPING_KEY_HANDLE_INVALID", StatusCode::kNotFound},
    {CKR_WRAPPING_KEY_SIZE_RANGE, "CKR_WRAPPING_KEY_SIZE_RANGE", StatusCode::kFailedPrecondition},
    {CKR_WRAPPING_KEY_TYPE_INCONSISTENT, "CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
     StatusCode::kFailedPrecondition},
    {CKR_RANDOM_SEED_NOT_SUPPORTED, "CKR_RANDOM_SEED_NOT_SUPPORTED", StatusCode::kFailedPrecondition},
    {CKR_RANDOM_NO_RNG, "CKR_RANDOM_NO_RNG", StatusCode::kFailedPrecondition},
    {CKR_DOMAIN_PARAMS_INVALID, "CKR_DOMAIN_PARAMS_INVALID", StatusCode::kInvalidArgument},
    {CKR_CURVE_NOT_SUPPORTED, "CKR_CURVE_NOT_SUPPORTED", StatusCode::kFailedPrecondition},
    {CKR_BUFFER_TOO_SMALL, "CKR_BUFFER_TOO_SMALL", StatusCode::kInternal},
    {CKR_SAVED_STATE_INVALID, "CKR_SAVED_STATE_INVALID", StatusCode::kInvalidArgument},
    {CKR_INFORMATION_SENSITIVE, "CKR_INFORMATION_SENSITIVE", StatusCode::kFailedPrecondition},
    {CKR_STATE_UNSAVEABLE, "CKR_STATE_UNSAVEABLE", StatusCode::kFailedPrecondition},
    {CKR_CRYPTOKI_NOT_INITIALIZED, "CKR_CRYPTOKI_NOT_INITIALIZED", StatusCode::kUnavailable},
    {CKR_CRYPTOKI_ALREADY_INITIALIZED, "CKR_CRYPTOKI_ALREADY_INITIALIZED",
     StatusCode::kFailedPrecondition},
    {CKR_MUTEX_BAD, "CKR_MUTEX_BAD", StatusCode::kInternal},
    {CKR_MUTEX_NOT_LOCKED, "CKR_MUTEX_NOT_LOCKED", StatusCode::kInternal},
    {CKR_FUNCTION_REJECTED, "CKR_FUNCTION_REJECTED", StatusCode::kPermissionDenied},
};

const CkrEntry* Lookup(CK_RV rv) {
  for (const CkrEntry& entry : kCkrTable) {
    if (entry.rv == rv) return &entry;
  }
  return nullptr;
}

constexpr CK_RV kVendorDefined = CK_RV{1} << 31;

}  // namespace

std::string_view CkrName(CK_RV rv) {
  if (const CkrEntry* entry = Lookup(rv)) return entry->name;
  if ((rv & kVendorDefined) != 0) return "CKR_VENDOR_DEFINED";
  return "CKR_UNKNOWN";
}

StatusCode CkrStatusCode(CK_RV rv) {
  if (const CkrEntry* entry = Lookup(rv)) return entry->code;
  return StatusCode::kInternal;
}

Status FromCkRv(CK_RV rv, std::string_view call) {
  if (rv == CKR_OK) return Status::Ok();
  char hex[2 + 2 * sizeof(CK_RV) + 1];
  std::snprintf(hex, sizeof(hex), "0x%lx", static_cast<unsigned long>(rv));
  std::string message;
  message.reserve(call.size() + 48);
  message.append(call).append(" failed: ").append(CkrName(rv)).append(" (").append(hex).append(")");
  return Status(CkrStatusCode(rv), std::move(message));
}

Status FromCkRvOperation(CK_RV rv, std::string_view call) {
  Status status = FromCkRv(rv, call);
  if (rv == CKR_GENERAL_ERROR || rv == CKR_FUNCTION_FAILED) {
    return Status(StatusCode::kUnavailable, std::string(status.message()));
  }
  return status;
}

bool IsRetryable(const Status& status) { return status.code() == StatusCode::kUnavailable; }

}  // namespace tkms::pkcs11
