#include "pkcs11/token.h"

#include <algorithm>
#include <cstring>

#include "pkcs11/ck_status.h"
#include "pkcs11/session.h"

namespace tkms::pkcs11 {
namespace {

constexpr size_t kLabelSize = 32;  // CK_TOKEN_INFO.label

std::optional<uint64_t> Memory(CK_ULONG value) {
  if (value == kCkUnavailable) return std::nullopt;
  return static_cast<uint64_t>(value);
}

Result<std::vector<CK_SLOT_ID>> SlotList(Module& module, bool token_present) {
  CK_FUNCTION_LIST& f = module.fns();
  const CK_BBOOL present = token_present ? CK_TRUE : CK_FALSE;
  // The list can grow between the two calls (hot-plug): retry a few times.
  for (int attempt = 0; attempt < 4; ++attempt) {
    CK_ULONG count = 0;
    TKMS_RETURN_IF_ERROR(FromCkRv(f.C_GetSlotList(present, nullptr, &count), "C_GetSlotList"));
    std::vector<CK_SLOT_ID> slots(count);
    const CK_RV rv = f.C_GetSlotList(present, slots.empty() ? nullptr : slots.data(), &count);
    if (rv == CKR_BUFFER_TOO_SMALL) continue;
    TKMS_RETURN_IF_ERROR(FromCkRv(rv, "C_GetSlotList"));
    slots.resize(count);
    return slots;
  }
  return Unavailable("C_GetSlotList kept changing size (slots being added?)");
}

// The labels of the initialised tokens, for "not found" messages.
std::string LabelList(const std::vector<TokenInfo>& tokens) {
  std::string out = "available tokens: ";
  size_t shown = 0;
  for (const TokenInfo& token : tokens) {
    if (!token.initialized) continue;
    if (shown == 16) {
      out += ", ...";
      break;
    }
    if (shown++ > 0) out += ", ";
    out += "'" + token.label + "'";
  }
  return shown == 0 ? std::string("no initialised token is present") : out;
}

Status SoInitPin(Module& module, CK_SLOT_ID slot, const SecretBytes& so_pin,
                 const SecretBytes& user_pin) {
  Result<Session> session = Session::Open(module.shared_from_this(), slot);
  if (!session.ok()) return session.error();
  CK_FUNCTION_LIST& f = module.fns();
  TKMS_RETURN_IF_ERROR(FromCkRv(f.C_Login(session->handle(), CKU_SO,
                                          const_cast<CK_UTF8CHAR*>(so_pin.data()),
                                          static_cast<CK_ULONG>(so_pin.size())),
                                "C_Login"));
  Status status = FromCkRv(f.C_InitPIN(session->handle(), const_cast<CK_UTF8CHAR*>(user_pin.data()),
                                       static_cast<CK_ULONG>(user_pin.size())),
                           "C_InitPIN");
  (void)f.C_Logout(session->handle());
  return status;
}

}  // namespace

Result<std::vector<TokenInfo>> ListTokens(Module& module) {
  TKMS_RETURN_IF_ERROR(module.CheckProcess());
  Result<std::vector<CK_SLOT_ID>> slots = SlotList(module, /*token_present=*/true);
  if (!slots.ok()) return slots.error();
  CK_FUNCTION_LIST& f = module.fns();
  std::vector<TokenInfo> tokens;
  for (CK_SLOT_ID slot : *slots) {
    CK_TOKEN_INFO ti{};
    const CK_RV rv = f.C_GetTokenInfo(slot, &ti);
    // A token removed since C_GetSlotList is simply not listed.
    if (rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_DEVICE_REMOVED) continue;
    TKMS_RETURN_IF_ERROR(FromCkRv(rv, "C_GetTokenInfo"));
    TokenInfo info;
    info.slot_id = slot;
    info.label = TrimPadded(ti.label, sizeof(ti.label));
    info.serial = TrimPadded(ti.serialNumber, sizeof(ti.serialNumber));
    info.manufacturer = TrimPadded(ti.manufacturerID, sizeof(ti.manufacturerID));
    info.model = TrimPadded(ti.model, sizeof(ti.model));
    info.initialized = (ti.flags & CKF_TOKEN_INITIALIZED) != 0;
    info.user_pin_initialized = (ti.flags & CKF_USER_PIN_INITIALIZED) != 0;
    info.login_required = (ti.flags & CKF_LOGIN_REQUIRED) != 0;
    info.has_rng = (ti.flags & CKF_RNG) != 0;
    info.write_protected = (ti.flags & CKF_WRITE_PROTECTED) != 0;
    info.user_pin_locked = (ti.flags & CKF_USER_PIN_LOCKED) != 0;
    info.so_pin_locked = (ti.flags & CKF_SO_PIN_LOCKED) != 0;
    info.min_pin_len = ti.ulMinPinLen;
    info.max_pin_len = ti.ulMaxPinLen;
    info.free_public_memory = Memory(ti.ulFreePublicMemory);
    info.total_public_memory = Memory(ti.ulTotalPublicMemory);
    info.free_private_memory = Memory(ti.ulFreePrivateMemory);
    info.total_private_memory = Memory(ti.ulTotalPrivateMemory);
    CK_SLOT_INFO si{};
    if (f.C_GetSlotInfo(slot, &si) == CKR_OK) {
      info.slot_description = TrimPadded(si.slotDescription, sizeof(si.slotDescription));
      info.slot_manufacturer = TrimPadded(si.manufacturerID, sizeof(si.manufacturerID));
    }
    tokens.push_back(std::move(info));
  }
  return tokens;
}

bool TokenMatchesUri(const Module& module, const TokenInfo& token, const Pkcs11Uri& uri) {
  auto same = [](const std::optional<std::string>& want, const std::string& have) {
    return !want.has_value() || *want == have;
  };
  const ModuleInfo& lib = module.info();
  if (uri.library_version.has_value()) {
    if (uri.library_version->major != lib.library_major) return false;
    if (uri.library_version->minor.value_or(0) != lib.library_minor) return false;
  }
  return same(uri.token, token.label) && same(uri.manufacturer, token.manufacturer) &&
         same(uri.serial, token.serial) && same(uri.model, token.model) &&
         same(uri.slot_description, token.slot_description) &&
         same(uri.slot_manufacturer, token.slot_manufacturer) &&
         (!uri.slot_id.has_value() || *uri.slot_id == token.slot_id) &&
         same(uri.library_manufacturer, lib.manufacturer) &&
         same(uri.library_description, lib.description);
}

Result<TokenInfo> FindToken(Module& module, std::string_view spec) {
  if (spec.empty()) return InvalidArgument("token name is empty");
  Result<std::vector<TokenInfo>> tokens = ListTokens(module);
  if (!tokens.ok()) return tokens.error();

  std::vector<const TokenInfo*> matches;
  std::string described;
  if (IsPkcs11Uri(spec)) {
    Result<Pkcs11Uri> uri = ParsePkcs11Uri(spec);
    if (!uri.ok()) return uri.error();
    if (uri->object || uri->id || uri->type) {
      return FailedPrecondition("token URI names an object (object/id/type): give the token only");
    }
    for (const TokenInfo& token : *tokens) {
      if (TokenMatchesUri(module, token, *uri)) matches.push_back(&token);
    }
    described = "matching the PKCS#11 URI";
    if (matches.empty() && uri->slot_id.has_value()) {
      // The slot exists but its token is absent: worth retrying later.
      Result<std::vector<CK_SLOT_ID>> all = SlotList(module, /*token_present=*/false);
      if (all.ok() && std::find(all->begin(), all->end(), static_cast<CK_SLOT_ID>(*uri->slot_id)) !=
                          all->end()) {
        bool present = false;
        for (const TokenInfo& token : *tokens) present = present || token.slot_id == *uri->slot_id;
        if (!present) {
          return Unavailable("slot " + std::to_string(*uri->slot_id) +
                             " has no token (try again later)");
        }
      }
    }
  } else if (spec.substr(0, 7) == "serial:") {
    const std::string_view serial = spec.substr(7);
    if (serial.empty()) return FailedPrecondition("\"serial:\" needs a serial number");
    for (const TokenInfo& token : *tokens) {
      if (token.serial == serial) matches.push_back(&token);
    }
    described = "with serial '" + std::string(serial) + "'";
  } else {
    for (const TokenInfo& token : *tokens) {
      if (token.label == spec) matches.push_back(&token);
    }
    described = "labelled '" + std::string(spec) + "'";
  }
  if (matches.empty()) return NotFound("no token " + described + " (" + LabelList(*tokens) + ")");
  if (matches.size() > 1) {
    return FailedPrecondition(std::to_string(matches.size()) + " tokens " + described +
                              ": name the token by serial:<serial> or a URI with serial=");
  }
  return *matches.front();
}

Status InitToken(Module& module, std::string_view label, const SecretBytes& so_pin,
                 const SecretBytes& user_pin) {
  if (label.empty() || label.size() > kLabelSize) {
    return InvalidArgument("token label must be 1 to 32 bytes, got " + std::to_string(label.size()));
  }
  if (so_pin.empty() || user_pin.empty()) return InvalidArgument("PINs must not be empty");
  Result<std::vector<TokenInfo>> tokens = ListTokens(module);
  if (!tokens.ok()) return tokens.error();
  const TokenInfo* free_token = nullptr;
  for (const TokenInfo& token : *tokens) {
    if (token.initialized && token.label == label) {
      return FailedPrecondition("a token labelled '" + std::string(label) + "' already exists");
    }
    if (!token.initialized && free_token == nullptr) free_token = &token;
  }
  if (free_token == nullptr) {
    return FailedPrecondition("the module offers no uninitialised token");
  }
  for (const SecretBytes* pin : {&so_pin, &user_pin}) {
    if (free_token->max_pin_len >= free_token->min_pin_len && free_token->max_pin_len > 0 &&
        (pin->size() < free_token->min_pin_len || pin->size() > free_token->max_pin_len)) {
      return InvalidArgument("PINs for this token are " + std::to_string(free_token->min_pin_len) +
                             " to " + std::to_string(free_token->max_pin_len) + " bytes");
    }
  }

  CK_UTF8CHAR padded[kLabelSize];
  std::memset(padded, ' ', sizeof(padded));
  std::memcpy(padded, label.data(), label.size());
  TKMS_RETURN_IF_ERROR(FromCkRv(
      module.fns().C_InitToken(free_token->slot_id, const_cast<CK_UTF8CHAR*>(so_pin.data()),
                               static_cast<CK_ULONG>(so_pin.size()), padded),
      "C_InitToken"));

  // The module may move the new token to another slot (SoftHSM2 renumbers
  // slots by serial): find it again by label.
  tokens = ListTokens(module);
  if (!tokens.ok()) return tokens.error();
  const TokenInfo* created = nullptr;
  for (const TokenInfo& token : *tokens) {
    if (token.initialized && token.label == label && !token.user_pin_initialized) {
      created = &token;
      break;
    }
  }
  if (created == nullptr) {
    return Internal("token '" + std::string(label) + "' not found after C_InitToken");
  }
  return SoInitPin(module, created->slot_id, so_pin, user_pin);
}

}  // namespace tkms::pkcs11
