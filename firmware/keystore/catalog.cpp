#include "firmware/keystore/catalog.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "firmware/base/encoding.h"
#include "firmware/keystore/key_policy.h"
#include "pkcs11/attributes.h"
#include "pkcs11/ck_status.h"

namespace tkms::keystore {
namespace {

using pkcs11::AttributeTemplate;
using pkcs11::RawKeyAttributes;
using pkcs11::ReadBytesAttribute;
using pkcs11::Session;

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

KeyAttributes ToKeyAttributes(const RawKeyAttributes& raw) {
  KeyAttributes a;
  a.token = raw.token.value_or(false);
  a.is_private = raw.is_private.value_or(false);
  a.modifiable = raw.modifiable.value_or(false);
  a.sensitive = raw.sensitive.value_or(false);
  a.extractable = raw.extractable.value_or(false);
  a.always_sensitive = raw.always_sensitive.value_or(false);
  a.never_extractable = raw.never_extractable.value_or(false);
  a.wrap_with_trusted = raw.wrap_with_trusted.value_or(false);
  a.trusted = raw.trusted.value_or(false);
  a.encrypt = raw.encrypt.value_or(false);
  a.decrypt = raw.decrypt.value_or(false);
  a.sign = raw.sign.value_or(false);
  a.verify = raw.verify.value_or(false);
  a.wrap = raw.wrap.value_or(false);
  a.unwrap = raw.unwrap.value_or(false);
  a.derive = raw.derive.value_or(false);
  return a;
}

Status ReadLabelAndId(Session& session, CK_OBJECT_HANDLE handle, KeyInfo& info) {
  auto label = ReadBytesAttribute(session, handle, CKA_LABEL);
  if (!label.ok()) return label.error();
  if (label->has_value()) info.label.assign((*label)->begin(), (*label)->end());
  auto id = ReadBytesAttribute(session, handle, CKA_ID);
  if (!id.ok()) return id.error();
  if (id->has_value()) info.id = std::move(**id);
  return Status::Ok();
}

// KeyInfo::type and bits of a secret key from its CKA_VALUE_LEN.
void DescribeSecretLength(const KeyEntry& e, std::optional<CK_ULONG> value_len, KeyInfo& info) {
  size_t len = value_len.value_or(0);
  if (len == 0 && (e.ck_type == CKK_AES || e.ck_type == CKK_GENERIC_SECRET)) {
    // Unrecorded length (see KeyInfo::length_reported).
    info.length_reported = false;
    len = kUnwrappedKeyBytes;
  }
  info.bits = len * 8;
  if (e.ck_type == CKK_AES && len == 32) info.type = KeyType::kAes256;
  if (e.ck_type == CKK_GENERIC_SECRET && len >= 32) info.type = KeyType::kHmacSha256;
  if (e.ck_type == CKK_GENERIC_SECRET && len >= 20 && len < 32) info.type = KeyType::kHmacSha1;
}

// KeyInfo::type and bits of an EC key from its CKA_EC_PARAMS.
Status DescribeEcCurve(Session& session, CK_OBJECT_HANDLE handle, KeyInfo& info) {
  auto params = ReadBytesAttribute(session, handle, CKA_EC_PARAMS);
  if (!params.ok()) return params.error();
  if (params->has_value() && std::equal((*params)->begin(), (*params)->end(), std::begin(kP256Params),
                                        std::end(kP256Params))) {
    info.type = KeyType::kEcP256;
    info.bits = 256;
  }
  return Status::Ok();
}

// KeyInfo::type and bits of an RSA key from its CKA_MODULUS (an attribute
// of both halves, never sensitive).
Status DescribeRsaModulus(Session& session, CK_OBJECT_HANDLE handle, KeyInfo& info) {
  auto modulus = ReadBytesAttribute(session, handle, CKA_MODULUS);
  if (!modulus.ok()) return modulus.error();
  if (!modulus->has_value()) return Status::Ok();
  const std::vector<uint8_t>& n = **modulus;
  size_t first = 0;
  while (first < n.size() && n[first] == 0) ++first;
  size_t bits = (n.size() - first) * 8;
  if (first < n.size()) {
    for (uint8_t top = n[first]; (top & 0x80) == 0; top = static_cast<uint8_t>(top << 1)) --bits;
  }
  info.bits = bits;
  if (bits == 2048) info.type = KeyType::kRsa2048;
  return Status::Ok();
}

}  // namespace

// ---- identities --------------------------------------------------------------

bool Identity::operator<(const Identity& other) const {
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

// ---- reading the token -------------------------------------------------------

Result<std::optional<KeyEntry>> ReadEntry(Session& session, CK_OBJECT_HANDLE handle) {
  Result<RawKeyAttributes> raw = pkcs11::ReadKeyAttributes(session, handle);
  if (!raw.ok()) {
    if (raw.error().code() == StatusCode::kNotFound) return std::optional<KeyEntry>();
    return raw.error();
  }
  if (!raw->object_class.has_value()) return std::optional<KeyEntry>();
  const std::optional<KeyClass> key_class = FromCkClass(*raw->object_class);
  if (!key_class.has_value()) return std::optional<KeyEntry>();

  KeyEntry e;
  e.ck_class = *raw->object_class;
  e.ck_type = raw->key_type.value_or(pkcs11::kCkUnavailable);
  e.token_handle = handle;
  e.op_handle = handle;
  KeyInfo& info = e.info;
  info.key_class = *key_class;
  info.ck_key_type = CkKeyTypeName(e.ck_type);
  TKMS_RETURN_IF_ERROR(ReadLabelAndId(session, handle, info));
  info.attributes = ToKeyAttributes(*raw);
  if (e.ck_class == CKO_SECRET_KEY) {
    DescribeSecretLength(e, raw->value_len, info);
  } else if (e.ck_type == CKK_EC) {
    TKMS_RETURN_IF_ERROR(DescribeEcCurve(session, handle, info));
  } else if (e.ck_type == CKK_RSA) {
    TKMS_RETURN_IF_ERROR(DescribeRsaModulus(session, handle, info));
  }
  if (const std::optional<uint32_t> n = ParseTicketKeyLabel(info.label);
      n.has_value() && info.id == TicketKeyId(*n)) {
    info.ticket_key_id = n;
  }
  info.usage = InferUsage(e);
  return std::optional<KeyEntry>(std::move(e));
}

Result<std::vector<KeyEntry>> ScanToken(Session& session) {
  AttributeTemplate tmpl;
  tmpl.Bool(CKA_TOKEN, true);
  Result<std::vector<CK_OBJECT_HANDLE>> handles = pkcs11::FindObjects(session, tmpl, 1u << 20);
  if (!handles.ok()) return handles.error();
  std::vector<KeyEntry> entries;
  for (CK_OBJECT_HANDLE handle : *handles) {
    Result<std::optional<KeyEntry>> entry = ReadEntry(session, handle);
    if (!entry.ok()) return entry.error();
    if (entry->has_value()) entries.push_back(std::move(**entry));
  }
  return entries;
}

// ---- the catalogue -----------------------------------------------------------

Status Catalog::Attach(Session& session, bool enabled, KeyEntry& entry) {
  const Identity identity = IdentityOf(entry);
  entry.op_handle = entry.token_handle;
  entry.info.session_copy = false;
  auto existing = copies_.find(identity);
  if (existing != copies_.end() && existing->second.source == entry.token_handle &&
      existing->second.object.valid()) {
    entry.op_handle = existing->second.object.handle();
    entry.info.session_copy = true;
    return Status::Ok();
  }
  if (existing != copies_.end()) copies_.erase(existing);
  if (!enabled || entry.ck_class != CKO_SECRET_KEY) return Status::Ok();

  AttributeTemplate tmpl;
  tmpl.Bool(CKA_TOKEN, false).Bool(CKA_MODIFIABLE, false);
  CK_OBJECT_HANDLE copy = pkcs11::kInvalidHandle;
  const CK_RV rv = session.fns().C_CopyObject(session.handle(), entry.token_handle, tmpl.data(),
                                              tmpl.size(), &copy);
  if (rv != CKR_OK) {
    Status status = pkcs11::FromCkRv(rv, "C_CopyObject");
    // Device trouble is reported; a refused copy just means no speed-up.
    return pkcs11::IsRetryable(status) ? status : Status::Ok();
  }
  copies_[identity] = Copy{entry.token_handle, pkcs11::SessionObject(session, copy)};
  entry.op_handle = copy;
  entry.info.session_copy = true;
  return Status::Ok();
}

Status Catalog::Replace(Session& session, bool copies_enabled, std::vector<KeyEntry> scanned) {
  Entries fresh;
  for (KeyEntry& found : scanned) {
    const Identity identity = IdentityOf(found);
    auto duplicate = fresh.find(identity);
    if (duplicate != fresh.end()) {
      duplicate->second->ambiguous = true;
      continue;
    }
    // Keep the entry object of a known key, so outstanding references follow
    // it to its new handles.
    auto known = entries_.find(identity);
    std::shared_ptr<KeyEntry> entry = known != entries_.end() ? known->second : std::make_shared<KeyEntry>();
    *entry = std::move(found);
    fresh.emplace(identity, std::move(entry));
  }
  for (auto& [identity, entry] : entries_) {
    if (fresh.find(identity) == fresh.end()) {
      entry->live = false;
      entry->op_handle = pkcs11::kInvalidHandle;
      copies_.erase(identity);
    }
  }
  entries_ = std::move(fresh);
  for (auto& [identity, entry] : entries_) {
    TKMS_RETURN_IF_ERROR(Attach(session, copies_enabled, *entry));
  }
  return Status::Ok();
}

Result<KeyInfo> Catalog::Add(Session& session, bool copies_enabled, KeyEntry entry) {
  auto shared = std::make_shared<KeyEntry>(std::move(entry));
  const Identity identity = IdentityOf(*shared);
  Forget(identity);
  TKMS_RETURN_IF_ERROR(Attach(session, copies_enabled, *shared));
  KeyInfo info = shared->info;
  entries_.emplace(identity, std::move(shared));
  return info;
}

void Catalog::Forget(const Identity& identity) {
  auto it = entries_.find(identity);
  if (it != entries_.end()) {
    it->second->live = false;
    it->second->op_handle = pkcs11::kInvalidHandle;
    entries_.erase(it);
  }
  copies_.erase(identity);
}

void Catalog::DropCopies() {
  copies_.clear();
  for (auto& [identity, entry] : entries_) {
    entry->op_handle = entry->token_handle;
    entry->info.session_copy = false;
  }
}

// ---- lookups -----------------------------------------------------------------

Result<std::shared_ptr<KeyEntry>> Catalog::MatchOne(const KeySelector& selector, KeyClass key_class) const {
  if (!selector.label.has_value() && !selector.id.has_value()) {
    return InvalidArgument("a key selector needs a label or an id");
  }
  const CK_OBJECT_CLASS cls = ToCkClass(key_class);
  std::vector<std::shared_ptr<KeyEntry>> matches;
  auto consider = [&](const std::shared_ptr<KeyEntry>& entry) {
    if (selector.id.has_value() && entry->info.id != *selector.id) return;
    matches.push_back(entry);
  };
  if (selector.label.has_value()) {
    for (auto it = entries_.lower_bound(Identity{cls, *selector.label, {}});
         it != entries_.end() && it->first.cls == cls && it->first.label == *selector.label; ++it) {
      consider(it->second);
    }
  } else {
    for (auto it = entries_.lower_bound(Identity{cls, {}, {}}); it != entries_.end() && it->first.cls == cls;
         ++it) {
      consider(it->second);
    }
  }
  const std::string what = std::string(KeyClassName(key_class)) + " with " + selector.ToString();
  if (matches.empty()) return NotFound("no " + what);
  if (matches.size() > 1) {
    return FailedPrecondition(std::to_string(matches.size()) + " keys match " + what + ": give both label and id");
  }
  if (matches.front()->ambiguous) {
    return FailedPrecondition("several token objects are the " + what + ": remove the duplicates");
  }
  return matches.front();
}

std::vector<std::shared_ptr<KeyEntry>> Catalog::MatchAll(const KeySelector& selector) const {
  std::vector<std::shared_ptr<KeyEntry>> matches;
  for (const auto& [identity, entry] : entries_) {
    if (selector.label.has_value() && identity.label != *selector.label) continue;
    if (selector.id.has_value() && identity.id != *selector.id) continue;
    matches.push_back(entry);
  }
  return matches;
}

std::shared_ptr<KeyEntry> Catalog::Find(const Identity& identity) const {
  auto it = entries_.find(identity);
  return it == entries_.end() ? nullptr : it->second;
}

Status Catalog::CheckUnused(const std::string& label, const Bytes& id) const {
  for (const auto& [identity, entry] : entries_) {
    if (identity.label == label) {
      return FailedPrecondition("a key labelled '" + label + "' already exists");
    }
    if (!id.empty() && identity.id == id) {
      return FailedPrecondition("a key with id " + HexEncode(id) + " already exists");
    }
  }
  return Status::Ok();
}

Result<uint32_t> Catalog::CurrentTicketKeyId(std::optional<KeyType> type) const {
  std::optional<uint32_t> current;
  for (auto it = entries_.lower_bound(Identity{CKO_SECRET_KEY, std::string(kTicketKeyLabelPrefix), {}});
       it != entries_.end() && it->first.cls == CKO_SECRET_KEY &&
       it->first.label.compare(0, kTicketKeyLabelPrefix.size(), kTicketKeyLabelPrefix) == 0;
       ++it) {
    const std::optional<uint32_t>& n = it->second->info.ticket_key_id;
    if (type.has_value() && it->second->info.type != *type) continue;
    if (n.has_value() && (!current.has_value() || *n > *current)) current = n;
  }
  if (!current.has_value()) return NotFound("there is no ticket key (see RotateTicketKey)");
  return *current;
}

}  // namespace tkms::keystore
