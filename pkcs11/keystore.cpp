#include "pkcs11/keystore.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <tuple>
#include <utility>

#include "firmware/base/encoding.h"
#include "pkcs11/attributes.h"
#include "pkcs11/ck_status.h"
#include "pkcs11/crypto_provider.h"
#include "pkcs11/token_key.h"
#include "pkcs11/uri.h"

namespace tkms::pkcs11 {
namespace {

using mikey::crypto::HashAlg;
using mikey::crypto::SecretKeyPtr;

constexpr size_t kMaxLabelBytes = 128;
constexpr size_t kMaxIdBytes = 64;
// The one key length tkms wraps and unwraps (RFC 3394 adds 8 bytes).
constexpr size_t kUnwrappedKeyBytes = 32;
// CKA_EC_PARAMS of P-256: DER OID 1.2.840.10045.3.1.7 (prime256v1).
constexpr uint8_t kP256Params[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};

// Runs `fn`, turning any exception into kInternal: no exception leaves the
// keystore.
template <typename Fn>
auto Guarded(std::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    return Internal(std::string(what) + ": unexpected exception");
  }
}

// A catalogue key: objects are told apart by class, label and id.
struct Identity {
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  std::string label;
  Bytes id;
  bool operator<(const Identity& other) const {
    if (cls != other.cls) return cls < other.cls;
    if (const int c = label.compare(other.label); c != 0) return c < 0;
    // By hand: GCC 12 -O2 misreads std::vector's memcmp-based operator< on
    // an empty vector as a huge read (-Wstringop-overread).
    const size_t n = std::min(id.size(), other.id.size());
    for (size_t i = 0; i < n; ++i) {
      if (id[i] != other.id[i]) return id[i] < other.id[i];
    }
    return id.size() < other.id.size();
  }
};

Identity IdentityOf(const KeyEntry& entry) {
  return Identity{entry.ck_class, entry.info.label, entry.info.id};
}

CK_OBJECT_CLASS ToCkClass(KeyClass key_class) {
  switch (key_class) {
    case KeyClass::kSecretKey: return CKO_SECRET_KEY;
    case KeyClass::kPrivateKey: return CKO_PRIVATE_KEY;
    case KeyClass::kPublicKey: return CKO_PUBLIC_KEY;
  }
  return CKO_SECRET_KEY;
}

std::optional<KeyClass> FromCkClass(CK_OBJECT_CLASS cls) {
  switch (cls) {
    case CKO_SECRET_KEY: return KeyClass::kSecretKey;
    case CKO_PRIVATE_KEY: return KeyClass::kPrivateKey;
    case CKO_PUBLIC_KEY: return KeyClass::kPublicKey;
    default: return std::nullopt;
  }
}

std::string CkKeyTypeName(CK_KEY_TYPE type) {
  switch (type) {
    case CKK_AES: return "CKK_AES";
    case CKK_GENERIC_SECRET: return "CKK_GENERIC_SECRET";
    case CKK_EC: return "CKK_EC";
    case CKK_RSA: return "CKK_RSA";
    case CKK_DES3: return "CKK_DES3";
    case CKK_SHA_1_HMAC: return "CKK_SHA_1_HMAC";
    case CKK_SHA256_HMAC: return "CKK_SHA256_HMAC";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof(hex), "CKK_0x%lx", static_cast<unsigned long>(type));
      return hex;
    }
  }
}

std::optional<uint32_t> ParseTicketLabel(std::string_view label) {
  if (label.substr(0, kTicketKeyLabelPrefix.size()) != kTicketKeyLabelPrefix) return std::nullopt;
  const std::string_view digits = label.substr(kTicketKeyLabelPrefix.size());
  if (digits.empty() || digits.size() > 10 || (digits.size() > 1 && digits[0] == '0')) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<uint64_t>(c - '0');
  }
  if (value > UINT32_MAX) return std::nullopt;
  return static_cast<uint32_t>(value);
}

// The attribute policy of a secret key (see the table in keystore.h).
struct Policy {
  CK_KEY_TYPE ck_type = CKK_AES;
  CK_MECHANISM_TYPE keygen = CKM_AES_KEY_GEN;
  size_t value_len = 32;  // generated length
  bool encrypt = false, decrypt = false, sign = false, verify = false;
  bool wrap = false, unwrap = false;
  bool extractable = false, wrap_with_trusted = false, modifiable = true;
};

Result<Policy> PolicyFor(KeyType type, KeyUsage usage) {
  Policy p;
  auto aes = [&]() {
    p.ck_type = CKK_AES;
    p.keygen = CKM_AES_KEY_GEN;
    p.value_len = 32;
  };
  auto hmac = [&](size_t len) {
    p.ck_type = CKK_GENERIC_SECRET;
    p.keygen = CKM_GENERIC_SECRET_KEY_GEN;
    p.value_len = len;
    p.sign = p.verify = true;
  };
  const size_t hmac_len = type == KeyType::kHmacSha1 ? 20 : 32;
  const bool is_hmac = type == KeyType::kHmacSha256 || type == KeyType::kHmacSha1;
  switch (usage) {
    case KeyUsage::kTicket:
      if (type == KeyType::kAes256) {
        aes();
        p.encrypt = p.decrypt = true;
      } else if (type == KeyType::kHmacSha256) {
        hmac(32);
      } else {
        return InvalidArgument(
            "ticket keys are aes-256 or hmac-sha256 (32 bytes, so they wrap with RFC 3394)");
      }
      p.extractable = true;
      p.wrap_with_trusted = true;
      return p;
    case KeyUsage::kUserPsk:
      if (!is_hmac) return InvalidArgument("user PSKs are hmac-sha256 or hmac-sha1 keys");
      hmac(hmac_len);
      return p;
    case KeyUsage::kWrapping:
      if (type != KeyType::kAes256) return InvalidArgument("wrapping keys are aes-256");
      aes();
      p.wrap = p.unwrap = true;
      p.modifiable = false;
      return p;
    case KeyUsage::kGeneric:
      if (type == KeyType::kAes256) {
        aes();
        p.encrypt = p.decrypt = true;
      } else if (is_hmac) {
        hmac(hmac_len);
      } else {
        return InvalidArgument("generic keys are aes-256 or hmac keys");
      }
      return p;
    case KeyUsage::kSigning:
      return InvalidArgument("signing keys are ec-p256 key pairs");
  }
  return InvalidArgument("unknown key usage");
}

// The common attributes of a long-term secret key.
AttributeTemplate SecretTemplate(const Policy& p, const std::string& label, const Bytes& id) {
  AttributeTemplate t;
  t.Ulong(CKA_CLASS, CKO_SECRET_KEY)
      .Ulong(CKA_KEY_TYPE, p.ck_type)
      .Bool(CKA_TOKEN, true)
      .Bool(CKA_PRIVATE, true)
      .Bool(CKA_SENSITIVE, true)
      .Bool(CKA_EXTRACTABLE, p.extractable)
      .Bool(CKA_WRAP_WITH_TRUSTED, p.wrap_with_trusted)
      .Bool(CKA_MODIFIABLE, p.modifiable)
      .Bool(CKA_ENCRYPT, p.encrypt)
      .Bool(CKA_DECRYPT, p.decrypt)
      .Bool(CKA_SIGN, p.sign)
      .Bool(CKA_VERIFY, p.verify)
      .Bool(CKA_WRAP, p.wrap)
      .Bool(CKA_UNWRAP, p.unwrap)
      .Bool(CKA_DERIVE, false)
      .Text(CKA_LABEL, label)
      .Bytes(CKA_ID, id);
  return t;
}

std::optional<KeyUsage> InferUsage(const KeyEntry& e) {
  const KeyAttributes& a = e.info.attributes;
  if (e.ck_type == CKK_EC) return KeyUsage::kSigning;
  if (e.ck_class != CKO_SECRET_KEY) return std::nullopt;
  if (a.wrap_with_trusted && e.info.ticket_key_id.has_value()) return KeyUsage::kTicket;
  if (e.ck_type == CKK_AES && (a.wrap || a.unwrap)) return KeyUsage::kWrapping;
  if (e.ck_type == CKK_GENERIC_SECRET && a.sign && !a.extractable) return KeyUsage::kUserPsk;
  return KeyUsage::kGeneric;
}

// Reads what the keystore needs to know about one object. nullopt for
// objects that are not keys (or vanished meanwhile).
Result<std::optional<KeyEntry>> ReadEntry(Session& session, CK_OBJECT_HANDLE handle) {
  Result<RawKeyAttributes> raw = ReadKeyAttributes(session, handle);
  if (!raw.ok()) {
    if (raw.error().code() == StatusCode::kNotFound) return std::optional<KeyEntry>();
    return raw.error();
  }
  if (!raw->object_class.has_value()) return std::optional<KeyEntry>();
  const std::optional<KeyClass> key_class = FromCkClass(*raw->object_class);
  if (!key_class.has_value()) return std::optional<KeyEntry>();

  KeyEntry e;
  e.ck_class = *raw->object_class;
  e.ck_type = raw->key_type.value_or(kCkUnavailable);
  e.token_handle = handle;
  e.op_handle = handle;
  KeyInfo& info = e.info;
  info.key_class = *key_class;
  info.ck_key_type = CkKeyTypeName(e.ck_type);
  auto label = ReadBytesAttribute(session, handle, CKA_LABEL);
  if (!label.ok()) return label.error();
  if (label->has_value()) info.label.assign((*label)->begin(), (*label)->end());
  auto id = ReadBytesAttribute(session, handle, CKA_ID);
  if (!id.ok()) return id.error();
  if (id->has_value()) info.id = std::move(**id);

  KeyAttributes& a = info.attributes;
  a.token = raw->token.value_or(false);
  a.is_private = raw->is_private.value_or(false);
  a.modifiable = raw->modifiable.value_or(false);
  a.sensitive = raw->sensitive.value_or(false);
  a.extractable = raw->extractable.value_or(false);
  a.always_sensitive = raw->always_sensitive.value_or(false);
  a.never_extractable = raw->never_extractable.value_or(false);
  a.wrap_with_trusted = raw->wrap_with_trusted.value_or(false);
  a.trusted = raw->trusted.value_or(false);
  a.encrypt = raw->encrypt.value_or(false);
  a.decrypt = raw->decrypt.value_or(false);
  a.sign = raw->sign.value_or(false);
  a.verify = raw->verify.value_or(false);
  a.wrap = raw->wrap.value_or(false);
  a.unwrap = raw->unwrap.value_or(false);
  a.derive = raw->derive.value_or(false);

  if (e.ck_class == CKO_SECRET_KEY) {
    size_t len = raw->value_len.value_or(0);
    if (len == 0 && (e.ck_type == CKK_AES || e.ck_type == CKK_GENERIC_SECRET)) {
      // Unrecorded length (see KeyInfo::length_reported).
      info.length_reported = false;
      len = kUnwrappedKeyBytes;
    }
    info.bits = len * 8;
    if (e.ck_type == CKK_AES && len == 32) info.type = KeyType::kAes256;
    if (e.ck_type == CKK_GENERIC_SECRET && len >= 32) info.type = KeyType::kHmacSha256;
    if (e.ck_type == CKK_GENERIC_SECRET && len >= 20 && len < 32) info.type = KeyType::kHmacSha1;
  } else if (e.ck_type == CKK_EC) {
    auto params = ReadBytesAttribute(session, handle, CKA_EC_PARAMS);
    if (!params.ok()) return params.error();
    if (params->has_value() && std::equal((*params)->begin(), (*params)->end(),
                                          std::begin(kP256Params), std::end(kP256Params))) {
      info.type = KeyType::kEcP256;
      info.bits = 256;
    }
  }
  if (const std::optional<uint32_t> n = ParseTicketLabel(info.label);
      n.has_value() && info.id == TicketKeyId(*n)) {
    info.ticket_key_id = n;
  }
  info.usage = InferUsage(e);
  return std::optional<KeyEntry>(std::move(e));
}

// Every key object on the token (token objects only: never our copies).
Result<std::vector<KeyEntry>> ScanToken(Session& session) {
  AttributeTemplate tmpl;
  tmpl.Bool(CKA_TOKEN, true);
  Result<std::vector<CK_OBJECT_HANDLE>> handles = FindObjects(session, tmpl, 1u << 20);
  if (!handles.ok()) return handles.error();
  std::vector<KeyEntry> entries;
  for (CK_OBJECT_HANDLE handle : *handles) {
    Result<std::optional<KeyEntry>> entry = ReadEntry(session, handle);
    if (!entry.ok()) return entry.error();
    if (entry->has_value()) entries.push_back(std::move(**entry));
  }
  return entries;
}

// The secret keys tkms agrees to use: inside the token for good.
Status CheckProtected(const KeyEntry& e) {
  const KeyAttributes& a = e.info.attributes;
  if (!a.sensitive || !a.is_private || (a.extractable && !a.wrap_with_trusted)) {
    return FailedPrecondition("key '" + e.info.label +
                              "' is not protected by the token (it must be private, sensitive, "
                              "and non-extractable or wrap-with-trusted): refusing to use it");
  }
  return Status::Ok();
}

Status CheckLabelAndId(const std::string& label, const Bytes& id) {
  if (label.empty() || label.size() > kMaxLabelBytes) {
    return InvalidArgument("key label must be 1 to " + std::to_string(kMaxLabelBytes) + " bytes");
  }
  if (id.size() > kMaxIdBytes) {
    return InvalidArgument("key id must be at most " + std::to_string(kMaxIdBytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

// ---- names and selectors ---------------------------------------------------

std::string_view KeyTypeName(KeyType type) {
  switch (type) {
    case KeyType::kAes256: return "aes-256";
    case KeyType::kHmacSha256: return "hmac-sha256";
    case KeyType::kHmacSha1: return "hmac-sha1";
    case KeyType::kEcP256: return "ec-p256";
  }
  return "unknown";
}

std::string_view KeyUsageName(KeyUsage usage) {
  switch (usage) {
    case KeyUsage::kTicket: return "ticket";
    case KeyUsage::kUserPsk: return "user-psk";
    case KeyUsage::kWrapping: return "wrapping";
    case KeyUsage::kSigning: return "signing";
    case KeyUsage::kGeneric: return "generic";
  }
  return "unknown";
}

std::string_view KeyClassName(KeyClass key_class) {
  switch (key_class) {
    case KeyClass::kSecretKey: return "secret-key";
    case KeyClass::kPrivateKey: return "private-key";
    case KeyClass::kPublicKey: return "public-key";
  }
  return "unknown";
}

std::string KeySelector::ToString() const {
  std::string out;
  if (label.has_value()) out = "label '" + *label + "'";
  if (id.has_value()) {
    if (!out.empty()) out += " ";
    out += "id " + (id->empty() ? std::string("(empty)") : HexEncode(*id));
  }
  return out.empty() ? std::string("(empty selector)") : out;
}

Result<KeySelector> KeySelectorFromUri(std::string_view uri) {
  Result<Pkcs11Uri> parsed = ParsePkcs11Uri(uri);
  if (!parsed.ok()) return parsed.error();
  const Pkcs11Uri& u = *parsed;
  if (u.token || u.manufacturer || u.serial || u.model || u.library_manufacturer ||
      u.library_description || u.library_version || u.slot_description || u.slot_manufacturer ||
      u.slot_id || u.type || !u.vendor_path.empty()) {
    return InvalidArgument("a key URI may only have the attributes object and id");
  }
  if (u.pin_source || u.module_name || u.module_path || !u.vendor_query.empty()) {
    return InvalidArgument("a key URI may not have query attributes");
  }
  if (!u.object && !u.id) return InvalidArgument("a key URI needs object= or id=");
  return KeySelector{u.object, u.id};
}

std::string TicketKeyLabel(uint32_t key_id) {
  return std::string(kTicketKeyLabelPrefix) + std::to_string(key_id);
}

Bytes TicketKeyId(uint32_t key_id) {
  return Bytes{static_cast<uint8_t>(key_id >> 24), static_cast<uint8_t>(key_id >> 16),
               static_cast<uint8_t>(key_id >> 8), static_cast<uint8_t>(key_id)};
}

KeySelector TicketKeySelector(uint32_t key_id) {
  return KeySelector{TicketKeyLabel(key_id), TicketKeyId(key_id)};
}

// ---- the catalogue ---------------------------------------------------------

// The keys the keystore knows, by identity, with their session copies. Read
// under the shared lock, changed under the exclusive lock.
struct Keystore::Catalog {
  struct Copy {
    CK_OBJECT_HANDLE source = kInvalidHandle;
    SessionObject object;
  };

  std::map<Identity, std::shared_ptr<KeyEntry>> entries;
  std::map<Identity, Copy> copies;  // owned by the login session

  // Points `entry` at a session copy of its token object, made in `session`
  // (the pinned login session), or at the token object itself when copies are
  // disabled or the token refuses the copy (a non-modifiable or non-copyable
  // key). Only secret keys are copied: they are the hot path.
  Status Attach(Session& session, bool enabled, KeyEntry& entry) {
    const Identity identity = IdentityOf(entry);
    entry.op_handle = entry.token_handle;
    entry.info.session_copy = false;
    auto existing = copies.find(identity);
    if (existing != copies.end() && existing->second.source == entry.token_handle &&
        existing->second.object.valid()) {
      entry.op_handle = existing->second.object.handle();
      entry.info.session_copy = true;
      return Status::Ok();
    }
    if (existing != copies.end()) copies.erase(existing);
    if (!enabled || entry.ck_class != CKO_SECRET_KEY) return Status::Ok();

    AttributeTemplate tmpl;
    tmpl.Bool(CKA_TOKEN, false).Bool(CKA_MODIFIABLE, false);
    CK_OBJECT_HANDLE copy = kInvalidHandle;
    const CK_RV rv = session.fns().C_CopyObject(session.handle(), entry.token_handle, tmpl.data(),
                                                tmpl.size(), &copy);
    if (rv != CKR_OK) {
      Status status = FromCkRv(rv, "C_CopyObject");
      // Device trouble is reported; a refused copy just means no speed-up.
      return IsRetryable(status) ? status : Status::Ok();
    }
    copies[identity] = Copy{entry.token_handle, SessionObject(session, copy)};
    entry.op_handle = copy;
    entry.info.session_copy = true;
    return Status::Ok();
  }

  void Forget(const Identity& identity) {
    auto it = entries.find(identity);
    if (it != entries.end()) {
      it->second->live = false;
      it->second->op_handle = kInvalidHandle;
      entries.erase(it);
    }
    copies.erase(identity);
  }

  // Destroys every copy (before a logout: the token drops private session
  // objects at logout, and their handles must not be destroyed later).
  void DropCopies() {
    copies.clear();
    for (auto& [identity, entry] : entries) {
      entry->op_handle = entry->token_handle;
      entry->info.session_copy = false;
    }
  }
};

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
    Result<TokenInfo> token = FindToken(*module, options.token);
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

Status Keystore::RefreshLocked() {
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  Session& session = login_.session();
  Result<std::vector<KeyEntry>> scanned = ScanToken(session);
  if (!scanned.ok()) return scanned.error();

  std::map<Identity, std::shared_ptr<KeyEntry>> fresh;
  for (KeyEntry& found : *scanned) {
    const Identity identity = IdentityOf(found);
    auto duplicate = fresh.find(identity);
    if (duplicate != fresh.end()) {
      duplicate->second->ambiguous = true;
      continue;
    }
    // Keep the entry object of a known key, so outstanding references follow
    // it to its new handles.
    auto known = catalog_->entries.find(identity);
    std::shared_ptr<KeyEntry> entry =
        known != catalog_->entries.end() ? known->second : std::make_shared<KeyEntry>();
    *entry = std::move(found);
    fresh.emplace(identity, std::move(entry));
  }
  for (auto& [identity, entry] : catalog_->entries) {
    if (fresh.find(identity) == fresh.end()) {
      entry->live = false;
      entry->op_handle = kInvalidHandle;
      catalog_->copies.erase(identity);
    }
  }
  catalog_->entries = std::move(fresh);
  for (auto& [identity, entry] : catalog_->entries) {
    TKMS_RETURN_IF_ERROR(catalog_->Attach(session, session_copies_, *entry));
  }
  return Status::Ok();
}

Result<KeyInfo> Keystore::AddObjectLocked(CK_OBJECT_HANDLE handle) {
  Session& session = login_.session();
  Result<std::optional<KeyEntry>> read = ReadEntry(session, handle);
  if (!read.ok()) return read.error();
  if (!read->has_value()) return Internal("the new object is not a key");
  auto entry = std::make_shared<KeyEntry>(std::move(**read));
  const Identity identity = IdentityOf(*entry);
  catalog_->Forget(identity);
  TKMS_RETURN_IF_ERROR(catalog_->Attach(session, session_copies_, *entry));
  KeyInfo info = entry->info;
  catalog_->entries.emplace(identity, std::move(entry));
  return info;
}

Status Keystore::Refresh() {
  return Guarded("Keystore::Refresh", [&]() -> Status {
    auto lock = WriteLock();
    return RefreshLocked();
  });
}

Result<std::shared_ptr<KeyEntry>> Keystore::MatchOne(const KeySelector& selector,
                                                     KeyClass key_class,
                                                     bool (*filter)(const KeyEntry&)) const {
  if (!selector.label.has_value() && !selector.id.has_value()) {
    return InvalidArgument("a key selector needs a label or an id");
  }
  const CK_OBJECT_CLASS cls = ToCkClass(key_class);
  std::vector<std::shared_ptr<KeyEntry>> matches;
  auto consider = [&](const std::shared_ptr<KeyEntry>& entry) {
    if (selector.id.has_value() && entry->info.id != *selector.id) return;
    if (filter != nullptr && !filter(*entry)) return;
    matches.push_back(entry);
  };
  const auto& entries = catalog_->entries;
  if (selector.label.has_value()) {
    for (auto it = entries.lower_bound(Identity{cls, *selector.label, {}});
         it != entries.end() && it->first.cls == cls && it->first.label == *selector.label; ++it) {
      consider(it->second);
    }
  } else {
    for (auto it = entries.lower_bound(Identity{cls, {}, {}});
         it != entries.end() && it->first.cls == cls; ++it) {
      consider(it->second);
    }
  }
  const std::string what = std::string(KeyClassName(key_class)) + " with " + selector.ToString();
  if (matches.empty()) return NotFound("no " + what);
  if (matches.size() > 1) {
    return FailedPrecondition(std::to_string(matches.size()) + " keys match " + what +
                              ": give both label and id");
  }
  if (matches.front()->ambiguous) {
    return FailedPrecondition("several token objects are the " + what +
                              ": remove the duplicates");
  }
  return matches.front();
}

Status Keystore::CheckNewKeyLocked(const std::string& label, const Bytes& id,
                                   KeyUsage usage) const {
  TKMS_RETURN_IF_ERROR(CheckLabelAndId(label, id));
  if (label.substr(0, kTicketKeyLabelPrefix.size()) == kTicketKeyLabelPrefix) {
    const std::optional<uint32_t> n = ParseTicketLabel(label);
    if (usage != KeyUsage::kTicket || !n.has_value() || id != TicketKeyId(*n)) {
      return InvalidArgument("labels starting with '" + std::string(kTicketKeyLabelPrefix) +
                             "' are reserved for ticket keys (label tkms-ticket-<n>, id = n "
                             "as 4 bytes big-endian)");
    }
  }
  for (const auto& [identity, entry] : catalog_->entries) {
    if (identity.label == label) {
      return FailedPrecondition("a key labelled '" + label + "' already exists");
    }
    if (!id.empty() && identity.id == id) {
      return FailedPrecondition("a key with id " + HexEncode(id) + " already exists");
    }
  }
  return Status::Ok();
}

// ---- creating keys -----------------------------------------------------------

Result<KeyInfo> Keystore::GenerateLocked(KeyType type, KeyUsage usage, std::string label,
                                         Bytes id) {
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, usage));
  Session& session = login_.session();
  CK_FUNCTION_LIST& f = session.fns();

  if (usage == KeyUsage::kSigning || type == KeyType::kEcP256) {
    if (usage != KeyUsage::kSigning || type != KeyType::kEcP256) {
      return InvalidArgument("signing keys are ec-p256 key pairs, and ec-p256 is for signing");
    }
    AttributeTemplate pub;
    pub.Ulong(CKA_CLASS, CKO_PUBLIC_KEY)
        .Ulong(CKA_KEY_TYPE, CKK_EC)
        .Bool(CKA_TOKEN, true)
        .Bool(CKA_PRIVATE, false)
        .Bool(CKA_MODIFIABLE, false)
        .Bool(CKA_VERIFY, true)
        .Bool(CKA_ENCRYPT, false)
        .Bool(CKA_WRAP, false)
        .Bool(CKA_DERIVE, false)
        .Bytes(CKA_EC_PARAMS, kP256Params)
        .Text(CKA_LABEL, label)
        .Bytes(CKA_ID, id);
    AttributeTemplate priv;
    priv.Ulong(CKA_CLASS, CKO_PRIVATE_KEY)
        .Ulong(CKA_KEY_TYPE, CKK_EC)
        .Bool(CKA_TOKEN, true)
        .Bool(CKA_PRIVATE, true)
        .Bool(CKA_SENSITIVE, true)
        .Bool(CKA_EXTRACTABLE, false)
        .Bool(CKA_MODIFIABLE, false)
        .Bool(CKA_SIGN, true)
        .Bool(CKA_DECRYPT, false)
        .Bool(CKA_UNWRAP, false)
        .Bool(CKA_DERIVE, false)
        .Text(CKA_LABEL, label)
        .Bytes(CKA_ID, id);
    CK_MECHANISM mechanism{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
    CK_OBJECT_HANDLE pub_handle = kInvalidHandle;
    CK_OBJECT_HANDLE priv_handle = kInvalidHandle;
    TKMS_RETURN_IF_ERROR(FromCkRv(
        f.C_GenerateKeyPair(session.handle(), &mechanism, pub.data(), pub.size(), priv.data(),
                            priv.size(), &pub_handle, &priv_handle),
        "C_GenerateKeyPair"));
    Result<KeyInfo> pub_info = AddObjectLocked(pub_handle);
    if (!pub_info.ok()) return pub_info.error();
    return AddObjectLocked(priv_handle);
  }

  Result<Policy> policy = PolicyFor(type, usage);
  if (!policy.ok()) return policy.error();
  AttributeTemplate tmpl = SecretTemplate(*policy, label, id);
  tmpl.Ulong(CKA_VALUE_LEN, policy->value_len);
  CK_MECHANISM mechanism{policy->keygen, nullptr, 0};
  CK_OBJECT_HANDLE handle = kInvalidHandle;
  TKMS_RETURN_IF_ERROR(FromCkRv(
      f.C_GenerateKey(session.handle(), &mechanism, tmpl.data(), tmpl.size(), &handle),
      "C_GenerateKey"));
  return AddObjectLocked(handle);
}

Result<KeyInfo> Keystore::GenerateKey(KeyType type, KeyUsage usage, std::string label, Bytes id) {
  return Guarded("Keystore::GenerateKey", [&]() -> Result<KeyInfo> {
    auto lock = WriteLock();
    return GenerateLocked(type, usage, std::move(label), std::move(id));
  });
}

Result<KeyInfo> Keystore::ImportSecret(KeyUsage usage, std::string label, Bytes id,
                                       const SecretBytes& value, std::optional<KeyType> type) {
  return Guarded("Keystore::ImportSecret", [&]() -> Result<KeyInfo> {
    if (!type.has_value()) {
      switch (usage) {
        case KeyUsage::kUserPsk:
        case KeyUsage::kGeneric:
          type = value.size() >= 32 ? KeyType::kHmacSha256 : KeyType::kHmacSha1;
          break;
        case KeyUsage::kTicket:
        case KeyUsage::kWrapping:
          type = KeyType::kAes256;
          break;
        case KeyUsage::kSigning:
          break;
      }
    }
    if (usage == KeyUsage::kSigning || !type.has_value() || *type == KeyType::kEcP256) {
      return InvalidArgument("importing EC keys is not supported; generate them in the token");
    }
    Result<Policy> policy = PolicyFor(*type, usage);
    if (!policy.ok()) return policy.error();
    if (policy->ck_type == CKK_AES && value.size() != 32) {
      return InvalidArgument("an aes-256 key is 32 bytes, got " + std::to_string(value.size()));
    }

    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, usage));
    Session& session = login_.session();
    CK_FUNCTION_LIST& f = session.fns();
    if (policy->ck_type == CKK_GENERIC_SECRET) {
      // The token's own limits (SoftHSM2: at least the hash length).
      const CK_MECHANISM_TYPE mech =
          *type == KeyType::kHmacSha1 ? CKM_SHA_1_HMAC : CKM_SHA256_HMAC;
      CK_MECHANISM_INFO mi{};
      size_t min_len = 1;
      size_t max_len = 4096;
      if (f.C_GetMechanismInfo(token_.slot_id, mech, &mi) == CKR_OK) {
        min_len = std::max<size_t>(min_len, mi.ulMinKeySize);
        if (mi.ulMaxKeySize >= min_len) max_len = mi.ulMaxKeySize;
      }
      if (value.size() < min_len || value.size() > max_len) {
        return InvalidArgument(std::string(KeyTypeName(*type)) + " keys on this token are " +
                               std::to_string(min_len) + " to " + std::to_string(max_len) +
                               " bytes, got " + std::to_string(value.size()));
      }
    }
    AttributeTemplate tmpl = SecretTemplate(*policy, label, id);
    tmpl.Bytes(CKA_VALUE, value);
    CK_OBJECT_HANDLE handle = kInvalidHandle;
    TKMS_RETURN_IF_ERROR(FromCkRv(
        f.C_CreateObject(session.handle(), tmpl.data(), tmpl.size(), &handle), "C_CreateObject"));
    return AddObjectLocked(handle);
  });
}

Result<KeyInfo> Keystore::ImportTrustedWrappingKey(std::string label, Bytes id,
                                                   const SecretBytes& value,
                                                   const SecretBytes& so_pin) {
  return Guarded("Keystore::ImportTrustedWrappingKey", [&]() -> Result<KeyInfo> {
    if (value.size() != 32) {
      return InvalidArgument("a trusted wrapping key is aes-256 (32 bytes), got " +
                             std::to_string(value.size()));
    }
    if (so_pin.empty()) return InvalidArgument("the SO PIN is empty");
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, KeyUsage::kWrapping));

    // Logging out ends the user's login on every session of this process and
    // makes the token drop private session objects: drop our copies first,
    // and close idle pooled sessions (none is leased under this lock).
    catalog_->DropCopies();
    pool_->CloseIdle();
    Status status = login_.Logout();
    if (status.ok()) status = login_.Login(CKU_SO, so_pin);
    if (status.ok()) {
      AttributeTemplate tmpl;
      tmpl.Ulong(CKA_CLASS, CKO_SECRET_KEY)
          .Ulong(CKA_KEY_TYPE, CKK_AES)
          .Bool(CKA_TOKEN, true)
          .Bool(CKA_PRIVATE, false)  // an SO session cannot create private objects
          .Bool(CKA_SENSITIVE, true)
          .Bool(CKA_EXTRACTABLE, false)
          .Bool(CKA_MODIFIABLE, false)
          .Bool(CKA_TRUSTED, true)
          .Bool(CKA_WRAP, true)
          .Bool(CKA_UNWRAP, false)
          .Bool(CKA_ENCRYPT, false)
          .Bool(CKA_DECRYPT, false)
          .Bool(CKA_SIGN, false)
          .Bool(CKA_VERIFY, false)
          .Bool(CKA_DERIVE, false)
          .Text(CKA_LABEL, label)
          .Bytes(CKA_ID, id)
          .Bytes(CKA_VALUE, value);
      CK_OBJECT_HANDLE handle = kInvalidHandle;
      Session& session = login_.session();
      status = FromCkRv(session.fns().C_CreateObject(session.handle(), tmpl.data(), tmpl.size(),
                                                     &handle),
                        "C_CreateObject");
    }
    // Whatever happened, return to the user login and rebuild the catalogue.
    if (login_.logged_in()) (void)login_.Logout();
    Status relogin = login_.Login(CKU_USER, pin_);
    if (!relogin.ok()) {
      return Unavailable("could not log the user back in after the SO session (" +
                         relogin.message() + "): re-open the keystore");
    }
    TKMS_RETURN_IF_ERROR(RefreshLocked());
    TKMS_RETURN_IF_ERROR(status);
    auto it = catalog_->entries.find(Identity{CKO_SECRET_KEY, label, id});
    if (it == catalog_->entries.end()) return Internal("the trusted key vanished");
    return it->second->info;
  });
}

// ---- inspecting and retiring -------------------------------------------------

Result<std::vector<KeyInfo>> Keystore::ListKeys() {
  return Guarded("Keystore::ListKeys", [&]() -> Result<std::vector<KeyInfo>> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    Result<std::vector<KeyEntry>> scanned = ScanToken(**lease);
    if (!scanned.ok()) {
      lease->Discard();
      return scanned.error();
    }
    std::vector<KeyInfo> keys;
    keys.reserve(scanned->size());
    for (KeyEntry& entry : *scanned) {
      auto known = catalog_->entries.find(IdentityOf(entry));
      if (known != catalog_->entries.end()) {
        entry.info.session_copy = known->second->info.session_copy;
      }
      keys.push_back(std::move(entry.info));
    }
    std::sort(keys.begin(), keys.end(), [](const KeyInfo& a, const KeyInfo& b) {
      return std::tie(a.key_class, a.label, a.id) < std::tie(b.key_class, b.label, b.id);
    });
    return keys;
  });
}

Result<KeyInfo> Keystore::DescribeKey(const KeySelector& selector) {
  return Guarded("Keystore::DescribeKey", [&]() -> Result<KeyInfo> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = MatchOne(selector, KeyClass::kSecretKey);
    if (!entry.ok() && entry.error().code() == StatusCode::kNotFound) {
      entry = MatchOne(selector, KeyClass::kPrivateKey);
    }
    if (!entry.ok()) return entry.error();
    return (*entry)->info;
  });
}

Status Keystore::DestroyKey(const KeySelector& selector) {
  return Guarded("Keystore::DestroyKey", [&]() -> Status {
    if (!selector.label.has_value() && !selector.id.has_value()) {
      return InvalidArgument("a key selector needs a label or an id");
    }
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    std::vector<std::shared_ptr<KeyEntry>> matches;
    for (const auto& [identity, entry] : catalog_->entries) {
      if (selector.label.has_value() && identity.label != *selector.label) continue;
      if (selector.id.has_value() && identity.id != *selector.id) continue;
      matches.push_back(entry);
    }
    if (matches.empty()) return NotFound("no key with " + selector.ToString());
    for (const auto& entry : matches) {
      if (entry->info.label != matches.front()->info.label ||
          entry->info.id != matches.front()->info.id) {
        return FailedPrecondition("several keys match " + selector.ToString() +
                                  ": give both label and id");
      }
      if (entry->ambiguous) {
        return FailedPrecondition("several token objects are the key with " +
                                  selector.ToString() + ": remove the duplicates by hand");
      }
    }
    // Retiring the current ticket key would let RotateTicketKey hand out its
    // id again; tickets protected under the old key would then resolve to
    // the new one.
    if (Result<uint32_t> current = CurrentTicketKeyIdLocked();
        current.ok() && matches.front()->info.ticket_key_id == *current) {
      return FailedPrecondition("ticket key " + std::to_string(*current) +
                                " is current: rotate before retiring it");
    }
    Session& session = login_.session();
    for (const auto& entry : matches) {
      const Identity identity = IdentityOf(*entry);
      catalog_->copies.erase(identity);  // the copy first, then the token object
      const CK_RV rv = session.fns().C_DestroyObject(session.handle(), entry->token_handle);
      catalog_->Forget(identity);
      TKMS_RETURN_IF_ERROR(FromCkRv(rv, "C_DestroyObject"));
    }
    return Status::Ok();
  });
}

// ---- cloning -----------------------------------------------------------------

Result<Bytes> Keystore::ExportWrapped(const KeySelector& key, const KeySelector& wrapping_key) {
  return Guarded("Keystore::ExportWrapped", [&]() -> Result<Bytes> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> target = MatchOne(key, KeyClass::kSecretKey);
    if (!target.ok()) return target.error();
    Result<std::shared_ptr<KeyEntry>> wrapper = MatchOne(wrapping_key, KeyClass::kSecretKey);
    if (!wrapper.ok()) return wrapper.error();
    const KeyEntry& k = **target;
    const KeyEntry& w = **wrapper;
    if (!k.info.attributes.extractable) {
      return FailedPrecondition("key '" + k.info.label +
                                "' is not extractable (CKA_EXTRACTABLE false): it never leaves "
                                "the token");
    }
    if (k.info.bits == 0 || (k.info.bits / 8) % 8 != 0) {
      return FailedPrecondition("key '" + k.info.label +
                                "' is not a multiple of 8 bytes: RFC 3394 cannot wrap it");
    }
    if (w.ck_type != CKK_AES || !w.info.attributes.wrap) {
      return FailedPrecondition("key '" + w.info.label + "' is not an AES key with CKA_WRAP");
    }
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    Session& session = **lease;
    CK_MECHANISM mechanism{CKM_AES_KEY_WRAP, nullptr, 0};
    CK_ULONG len = 0;
    Status status = FromCkRv(session.fns().C_WrapKey(session.handle(), &mechanism, w.token_handle,
                                                     k.token_handle, nullptr, &len),
                             "C_WrapKey");
    Bytes wrapped;
    if (status.ok()) {
      wrapped.resize(len);
      status = FromCkRv(session.fns().C_WrapKey(session.handle(), &mechanism, w.token_handle,
                                                k.token_handle, wrapped.data(), &len),
                        "C_WrapKey");
    }
    if (!status.ok()) {
      if (IsRetryable(status)) lease->Discard();
      return status;
    }
    wrapped.resize(len);
    return wrapped;
  });
}

Result<KeyInfo> Keystore::ImportWrapped(ByteSpan wrapped, const KeySelector& wrapping_key,
                                        KeyType type, KeyUsage usage, std::string label,
                                        Bytes id) {
  return Guarded("Keystore::ImportWrapped", [&]() -> Result<KeyInfo> {
    if (wrapped.size() != kUnwrappedKeyBytes + 8) {
      return InvalidArgument("a wrapped key is the RFC 3394 wrapping of a 32-byte key (40 bytes), "
                             "got " + std::to_string(wrapped.size()) + " bytes");
    }
    Result<Policy> policy = PolicyFor(type, usage);
    if (!policy.ok()) return policy.error();
    if (policy->value_len != kUnwrappedKeyBytes) {
      return InvalidArgument(std::string(KeyTypeName(type)) +
                             " keys are not 32 bytes: only aes-256 and hmac-sha256 keys are "
                             "unwrapped");
    }
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    TKMS_RETURN_IF_ERROR(CheckNewKeyLocked(label, id, usage));
    Result<std::shared_ptr<KeyEntry>> unwrapper = MatchOne(wrapping_key, KeyClass::kSecretKey);
    if (!unwrapper.ok()) return unwrapper.error();
    const KeyEntry& w = **unwrapper;
    if (w.ck_type != CKK_AES || !w.info.attributes.unwrap) {
      return FailedPrecondition("key '" + w.info.label + "' is not an AES key with CKA_UNWRAP");
    }
    AttributeTemplate tmpl = SecretTemplate(*policy, label, id);
    Session& session = login_.session();
    CK_MECHANISM mechanism{CKM_AES_KEY_WRAP, nullptr, 0};
    CK_OBJECT_HANDLE handle = kInvalidHandle;
    TKMS_RETURN_IF_ERROR(FromCkRv(
        session.fns().C_UnwrapKey(session.handle(), &mechanism, w.token_handle,
                                  const_cast<CK_BYTE*>(wrapped.data()),
                                  static_cast<CK_ULONG>(wrapped.size()), tmpl.data(), tmpl.size(),
                                  &handle),
        "C_UnwrapKey"));
    Result<KeyInfo> info = AddObjectLocked(handle);
    if (!info.ok()) return info.error();
    if (info->bits != kUnwrappedKeyBytes * 8) {
      const Identity identity{CKO_SECRET_KEY, info->label, info->id};
      catalog_->copies.erase(identity);
      (void)session.fns().C_DestroyObject(session.handle(), handle);
      catalog_->Forget(identity);
      return InvalidArgument("the unwrapped key has " + std::to_string(info->bits / 8) +
                             " bytes, which does not fit " + std::string(KeyTypeName(type)));
    }
    return info;
  });
}

// ---- ticket keys -------------------------------------------------------------

Result<uint32_t> Keystore::CurrentTicketKeyIdLocked() const {
  std::optional<uint32_t> current;
  const auto& entries = catalog_->entries;
  for (auto it = entries.lower_bound(Identity{CKO_SECRET_KEY, std::string(kTicketKeyLabelPrefix), {}});
       it != entries.end() && it->first.cls == CKO_SECRET_KEY &&
       it->first.label.compare(0, kTicketKeyLabelPrefix.size(), kTicketKeyLabelPrefix) == 0;
       ++it) {
    const std::optional<uint32_t>& n = it->second->info.ticket_key_id;
    if (n.has_value() && (!current.has_value() || *n > *current)) current = n;
  }
  if (!current.has_value()) return NotFound("there is no ticket key (see RotateTicketKey)");
  return *current;
}

Result<uint32_t> Keystore::CurrentTicketKeyId() {
  return Guarded("Keystore::CurrentTicketKeyId", [&]() -> Result<uint32_t> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    return CurrentTicketKeyIdLocked();
  });
}

Result<KeyInfo> Keystore::RotateTicketKey(KeyType type) {
  return Guarded("Keystore::RotateTicketKey", [&]() -> Result<KeyInfo> {
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    uint32_t next = 1;
    Result<uint32_t> current = CurrentTicketKeyIdLocked();
    if (current.ok()) {
      if (*current == UINT32_MAX) return ResourceExhausted("ticket key ids are exhausted");
      next = *current + 1;
    } else if (current.error().code() != StatusCode::kNotFound) {
      return current.error();
    }
    return GenerateLocked(type, KeyUsage::kTicket, TicketKeyLabel(next), TicketKeyId(next));
  });
}

// ---- using keys ----------------------------------------------------------------

Result<SecretKeyPtr> Keystore::FindSecretKey(const KeySelector& selector) {
  return Guarded("Keystore::FindSecretKey", [&]() -> Result<SecretKeyPtr> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = MatchOne(selector, KeyClass::kSecretKey);
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
    Status status = FromCkRv(session.fns().C_GenerateRandom(session.handle(), out.data(),
                                                            static_cast<CK_ULONG>(out.size())),
                             "C_GenerateRandom");
    if (IsRetryable(status)) lease->Discard();
    return status;
  });
}

Result<Bytes> Keystore::SignEcdsaP256(const KeySelector& key, ByteSpan sha256_digest) {
  return Guarded("Keystore::SignEcdsaP256", [&]() -> Result<Bytes> {
    if (sha256_digest.size() != 32) {
      return InvalidArgument("ECDSA P-256 signs a 32-byte SHA-256 digest, got " +
                             std::to_string(sha256_digest.size()) + " bytes");
    }
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = MatchOne(key, KeyClass::kPrivateKey);
    if (!entry.ok()) return entry.error();
    const KeyEntry& e = **entry;
    if (e.info.type != KeyType::kEcP256 || !e.info.attributes.sign) {
      return FailedPrecondition("key '" + e.info.label + "' is not an EC P-256 signing key");
    }
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    Session& session = **lease;
    CK_MECHANISM mechanism{CKM_ECDSA, nullptr, 0};
    Status status = FromCkRv(session.fns().C_SignInit(session.handle(), &mechanism, e.op_handle),
                             "C_SignInit");
    Bytes signature(64);
    CK_ULONG len = static_cast<CK_ULONG>(signature.size());
    if (status.ok()) {
      status = FromCkRv(session.fns().C_Sign(session.handle(),
                                             const_cast<CK_BYTE*>(sha256_digest.data()),
                                             static_cast<CK_ULONG>(sha256_digest.size()),
                                             signature.data(), &len),
                        "C_Sign");
    }
    if (!status.ok()) {
      lease->Discard();  // an operation may still be active on this session
      return status;
    }
    if (len != 64) return Internal("CKM_ECDSA returned " + std::to_string(len) + " bytes, not 64");
    return signature;
  });
}

// ---- non-key objects -----------------------------------------------------------

namespace {

// The search template of a non-key object: class (and certificate type) and
// label.
AttributeTemplate ObjectSearchTemplate(TokenObjectKind kind, std::string_view label) {
  AttributeTemplate tmpl;
  if (kind == TokenObjectKind::kCertificate) {
    tmpl.Ulong(CKA_CLASS, CKO_CERTIFICATE).Ulong(CKA_CERTIFICATE_TYPE, CKC_X_509);
  } else {
    tmpl.Ulong(CKA_CLASS, CKO_DATA);
  }
  tmpl.Text(CKA_LABEL, label);
  return tmpl;
}

Status CheckObjectLabel(std::string_view label) {
  if (label.empty() || label.size() > 128) return InvalidArgument("an object label is 1..128 bytes");
  return Status::Ok();
}

// The one object of `kind` labelled `label` visible to `session`, if any.
Result<std::optional<CK_OBJECT_HANDLE>> FindOneObject(Session& session, TokenObjectKind kind,
                                                       std::string_view label) {
  AttributeTemplate tmpl = ObjectSearchTemplate(kind, label);
  auto found = FindObjects(session, tmpl, 2);
  if (!found.ok()) return found.error();
  if (found->size() > 1) {
    return FailedPrecondition("more than one token object is labelled '" + std::string(label) + "'");
  }
  if (found->empty()) return std::optional<CK_OBJECT_HANDLE>();
  return std::optional<CK_OBJECT_HANDLE>(found->front());
}

}  // namespace

Result<std::optional<Bytes>> Keystore::ReadObjectValue(TokenObjectKind kind, std::string_view label) {
  return Guarded("Keystore::ReadObjectValue", [&]() -> Result<std::optional<Bytes>> {
    TKMS_RETURN_IF_ERROR(CheckObjectLabel(label));
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    auto handle = FindOneObject(**lease, kind, label);
    if (!handle.ok()) return handle.error();
    if (!handle->has_value()) return std::optional<Bytes>();
    auto value = ReadBytesAttribute(**lease, **handle, CKA_VALUE);
    if (!value.ok()) return value.error();
    if (!value->has_value()) return Internal("token object '" + std::string(label) + "' has no readable value");
    if ((*value)->size() > kMaxObjectValueBytes) {
      return FailedPrecondition("token object '" + std::string(label) + "' is larger than expected");
    }
    return std::optional<Bytes>(std::move(**value));
  });
}

Status Keystore::CreateObject(TokenObjectKind kind, std::string_view label, ByteSpan value) {
  return Guarded("Keystore::CreateObject", [&]() -> Status {
    TKMS_RETURN_IF_ERROR(CheckObjectLabel(label));
    if (value.empty() || value.size() > kMaxObjectValueBytes) {
      return InvalidArgument("an object value is 1.." + std::to_string(kMaxObjectValueBytes) + " bytes");
    }
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Session& session = login_.session();
    auto existing = FindOneObject(session, kind, label);
    if (!existing.ok()) return existing.error();
    if (existing->has_value()) {
      return FailedPrecondition("the token already has an object labelled '" + std::string(label) + "'");
    }
    AttributeTemplate tmpl;
    if (kind == TokenObjectKind::kCertificate) {
      tmpl.Ulong(CKA_CLASS, CKO_CERTIFICATE)
          .Ulong(CKA_CERTIFICATE_TYPE, CKC_X_509)
          .Bool(CKA_TOKEN, true)
          .Bool(CKA_PRIVATE, false)
          .Bool(CKA_MODIFIABLE, false)
          .Text(CKA_LABEL, label)
          .Bytes(CKA_SUBJECT, ByteSpan())  // required by PKCS#11; the DER stays in CKA_VALUE
          .Bytes(CKA_VALUE, value);
    } else {
      tmpl.Ulong(CKA_CLASS, CKO_DATA)
          .Bool(CKA_TOKEN, true)
          .Bool(CKA_PRIVATE, true)
          .Bool(CKA_MODIFIABLE, false)
          .Text(CKA_LABEL, label)
          .Text(CKA_APPLICATION, "tkms")
          .Bytes(CKA_VALUE, value);
    }
    CK_OBJECT_HANDLE handle = kInvalidHandle;
    return FromCkRv(session.fns().C_CreateObject(session.handle(), tmpl.data(), tmpl.size(), &handle),
                    "C_CreateObject");
  });
}

Status Keystore::DestroyObject(TokenObjectKind kind, std::string_view label) {
  return Guarded("Keystore::DestroyObject", [&]() -> Status {
    TKMS_RETURN_IF_ERROR(CheckObjectLabel(label));
    auto lock = WriteLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Session& session = login_.session();
    auto existing = FindOneObject(session, kind, label);
    if (!existing.ok()) return existing.error();
    if (!existing->has_value()) return NotFound("the token has no object labelled '" + std::string(label) + "'");
    return FromCkRv(session.fns().C_DestroyObject(session.handle(), **existing), "C_DestroyObject");
  });
}

Result<Bytes> Keystore::PublicKeyEcPoint(const KeySelector& key) {
  return Guarded("Keystore::PublicKeyEcPoint", [&]() -> Result<Bytes> {
    auto lock = ReadLock();
    TKMS_RETURN_IF_ERROR(module_->CheckProcess());
    Result<std::shared_ptr<KeyEntry>> entry = MatchOne(key, KeyClass::kPublicKey);
    if (!entry.ok()) return entry.error();
    if ((*entry)->info.type != KeyType::kEcP256) {
      return FailedPrecondition("key '" + (*entry)->info.label + "' is not an EC P-256 key");
    }
    Result<SessionPool::Lease> lease = pool_->Acquire();
    if (!lease.ok()) return lease.error();
    auto point = ReadBytesAttribute(**lease, (*entry)->token_handle, CKA_EC_POINT);
    if (!point.ok()) return point.error();
    if (!point->has_value()) return Internal("the public key has no CKA_EC_POINT");
    Bytes& p = **point;
    // PKCS#11 v2.40 §2.3.3: DER OCTET STRING around the X9.62 point; some
    // modules return the raw point.
    if (p.size() == 67 && p[0] == 0x04 && p[1] == 0x41 && p[2] == 0x04) {
      return Bytes(p.begin() + 2, p.end());
    }
    if (p.size() == 65 && p[0] == 0x04) return p;
    return Internal("unexpected CKA_EC_POINT encoding");
  });
}

// ---- operations for Pkcs11CryptoProvider -------------------------------------

Status Keystore::TokenHmac(const TokenSecretKey& key, HashAlg alg, std::span<const ByteSpan> parts,
                           std::span<uint8_t> out) {
  const size_t digest = mikey::crypto::DigestLength(alg);
  if (digest == 0) return InvalidArgument("unknown hash algorithm");
  if (out.size() != digest) {
    return InvalidArgument("HMAC output buffer has " + std::to_string(out.size()) +
                           " bytes, expected " + std::to_string(digest));
  }
  auto lock = ReadLock();
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  const KeyEntry& e = key.entry();
  if (!e.live) return NotFound("key '" + e.info.label + "' has been destroyed");
  if (e.ck_type != CKK_GENERIC_SECRET || !e.info.attributes.sign) {
    return FailedPrecondition("key '" + e.info.label + "' (" + e.info.ck_key_type +
                              ") is not an HMAC key with CKA_SIGN");
  }
  // One buffer: C_Sign is a single call, C_SignUpdate per part would be more.
  SecretBytes joined;
  ByteSpan data;
  if (parts.size() == 1) {
    data = parts[0];
  } else {
    size_t total = 0;
    for (ByteSpan part : parts) total += part.size();
    joined.reserve(total);
    for (ByteSpan part : parts) joined.insert(joined.end(), part.begin(), part.end());
    data = joined;
  }
  uint8_t empty = 0;  // some modules reject a null data pointer even for 0 bytes
  CK_BYTE* data_ptr = data.empty() ? &empty : const_cast<CK_BYTE*>(data.data());

  Result<SessionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Session& session = **lease;
  CK_MECHANISM mechanism{alg == HashAlg::kSha1 ? CKM_SHA_1_HMAC : CKM_SHA256_HMAC, nullptr, 0};
  Status status =
      FromCkRv(session.fns().C_SignInit(session.handle(), &mechanism, e.op_handle), "C_SignInit");
  CK_ULONG len = static_cast<CK_ULONG>(out.size());
  if (status.ok()) {
    status = FromCkRv(session.fns().C_Sign(session.handle(), data_ptr,
                                           static_cast<CK_ULONG>(data.size()), out.data(), &len),
                      "C_Sign");
  }
  if (!status.ok()) {
    lease->Discard();
    return status;
  }
  if (len != out.size()) return Internal("C_Sign returned a MAC of the wrong length");
  return Status::Ok();
}

Status Keystore::TokenAesCtr(const TokenSecretKey& key, std::span<const uint8_t, 16> iv,
                             ByteSpan in, std::span<uint8_t> out) {
  if (out.size() != in.size()) return InvalidArgument("AES-CM output size differs from input size");
  const bool same = in.data() == out.data();
  const bool overlap = !in.empty() && in.data() < out.data() + out.size() &&
                       out.data() < in.data() + in.size();
  if (overlap && !same) return InvalidArgument("AES-CM buffers overlap partially");
  auto lock = ReadLock();
  TKMS_RETURN_IF_ERROR(module_->CheckProcess());
  const KeyEntry& e = key.entry();
  if (!e.live) return NotFound("key '" + e.info.label + "' has been destroyed");
  if (e.ck_type != CKK_AES || !e.info.attributes.encrypt) {
    return FailedPrecondition("key '" + e.info.label + "' (" + e.info.ck_key_type +
                              ") is not an AES key with CKA_ENCRYPT");
  }
  if (in.empty()) return Status::Ok();

  // SRTP AES-CM adds i to the whole 128-bit IV, wrapping mod 2^128. SoftHSM2
  // refuses a counter that would wrap, so split the call where it wraps.
  uint64_t high = 0;
  uint64_t low = 0;
  for (size_t i = 0; i < 8; ++i) high = (high << 8) | iv[i];
  for (size_t i = 8; i < 16; ++i) low = (low << 8) | iv[i];
  const uint64_t blocks = (in.size() + 15) / 16;
  size_t first_len = in.size();
  if (high == UINT64_MAX && low != 0) {
    const uint64_t before_wrap = ~low + 1;  // 2^64 - low blocks until the counter wraps
    if (blocks > before_wrap) first_len = static_cast<size_t>(before_wrap) * 16;
  }
  // In-place use: keep the input (the spec does not promise in-place C_Encrypt).
  SecretBytes input_copy;
  ByteSpan input = in;
  if (same) {
    input_copy.assign(in.begin(), in.end());
    input = input_copy;
  }

  Result<SessionPool::Lease> lease = pool_->Acquire();
  if (!lease.ok()) return lease.error();
  Session& session = **lease;
  auto run = [&](std::span<const uint8_t, 16> counter, ByteSpan part,
                 std::span<uint8_t> part_out) -> Status {
    CK_AES_CTR_PARAMS params{};
    params.ulCounterBits = 128;
    std::memcpy(params.cb, counter.data(), 16);
    CK_MECHANISM mechanism{CKM_AES_CTR, &params, sizeof(params)};
    TKMS_RETURN_IF_ERROR(FromCkRv(
        session.fns().C_EncryptInit(session.handle(), &mechanism, e.op_handle), "C_EncryptInit"));
    CK_ULONG len = static_cast<CK_ULONG>(part_out.size());
    TKMS_RETURN_IF_ERROR(FromCkRv(
        session.fns().C_Encrypt(session.handle(), const_cast<CK_BYTE*>(part.data()),
                                static_cast<CK_ULONG>(part.size()), part_out.data(), &len),
        "C_Encrypt"));
    if (len != part_out.size()) return Internal("C_Encrypt returned the wrong length");
    return Status::Ok();
  };
  Status status = run(iv, input.first(first_len), out.first(first_len));
  if (status.ok() && first_len < input.size()) {
    static constexpr uint8_t kZero[16] = {};
    status = run(std::span<const uint8_t, 16>(kZero), input.subspan(first_len),
                 out.subspan(first_len));
  }
  if (!status.ok()) lease->Discard();
  return status;
}

}  // namespace tkms::pkcs11
