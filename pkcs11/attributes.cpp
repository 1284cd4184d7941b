#include "pkcs11/attributes.h"

#include <cstring>

#include "pkcs11/ck_status.h"

namespace tkms::pkcs11 {

AttributeTemplate& AttributeTemplate::Bool(CK_ATTRIBUTE_TYPE type, bool value) {
  const CK_BBOOL b = value ? CK_TRUE : CK_FALSE;
  values_.emplace_back(type, SecretBytes{b});
  return *this;
}

AttributeTemplate& AttributeTemplate::Ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG value) {
  SecretBytes bytes(sizeof(CK_ULONG));
  std::memcpy(bytes.data(), &value, sizeof(value));
  values_.emplace_back(type, std::move(bytes));
  return *this;
}

AttributeTemplate& AttributeTemplate::Bytes(CK_ATTRIBUTE_TYPE type, ByteSpan value) {
  values_.emplace_back(type, SecretBytes(value.begin(), value.end()));
  return *this;
}

AttributeTemplate& AttributeTemplate::Text(CK_ATTRIBUTE_TYPE type, std::string_view value) {
  values_.emplace_back(type, SecretBytes(value.begin(), value.end()));
  return *this;
}

CK_ATTRIBUTE* AttributeTemplate::data() {
  attributes_.clear();
  attributes_.reserve(values_.size());
  for (auto& [type, bytes] : values_) {
    attributes_.push_back(CK_ATTRIBUTE{type, bytes.empty() ? nullptr : bytes.data(),
                                       static_cast<CK_ULONG>(bytes.size())});
  }
  return attributes_.empty() ? nullptr : attributes_.data();
}

Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(Session& session, AttributeTemplate& tmpl,
                                                  size_t limit) {
  CK_FUNCTION_LIST& f = session.fns();
  TKMS_RETURN_IF_ERROR(
      FromCkRv(f.C_FindObjectsInit(session.handle(), tmpl.data(), tmpl.size()), "C_FindObjectsInit"));
  std::vector<CK_OBJECT_HANDLE> found;
  CK_OBJECT_HANDLE batch[64];
  Status status;
  while (found.size() < limit) {
    CK_ULONG count = 0;
    status = FromCkRv(f.C_FindObjects(session.handle(), batch, 64, &count), "C_FindObjects");
    if (!status.ok() || count == 0) break;
    found.insert(found.end(), batch, batch + count);
  }
  // The search must be finished whatever happened, or the session stays busy.
  Status final_status = FromCkRv(f.C_FindObjectsFinal(session.handle()), "C_FindObjectsFinal");
  if (!status.ok()) return status;
  if (!final_status.ok()) return final_status;
  if (found.size() > limit) found.resize(limit);
  return found;
}

Result<std::optional<std::vector<uint8_t>>> ReadBytesAttribute(Session& session,
                                                               CK_OBJECT_HANDLE object,
                                                               CK_ATTRIBUTE_TYPE type) {
  CK_FUNCTION_LIST& f = session.fns();
  CK_ATTRIBUTE attribute{type, nullptr, 0};
  CK_RV rv = f.C_GetAttributeValue(session.handle(), object, &attribute, 1);
  if (rv == CKR_ATTRIBUTE_TYPE_INVALID || rv == CKR_ATTRIBUTE_SENSITIVE ||
      attribute.ulValueLen == kCkUnavailable) {
    return std::optional<std::vector<uint8_t>>();
  }
  TKMS_RETURN_IF_ERROR(FromCkRv(rv, "C_GetAttributeValue"));
  if (attribute.ulValueLen > 65536) {
    return Internal("C_GetAttributeValue returned an implausible length");
  }
  std::vector<uint8_t> value(attribute.ulValueLen);
  attribute.pValue = value.empty() ? nullptr : value.data();
  rv = f.C_GetAttributeValue(session.handle(), object, &attribute, 1);
  TKMS_RETURN_IF_ERROR(FromCkRv(rv, "C_GetAttributeValue"));
  if (attribute.ulValueLen > value.size()) return Internal("C_GetAttributeValue grew a value");
  value.resize(attribute.ulValueLen);
  return std::optional<std::vector<uint8_t>>(std::move(value));
}

Result<RawKeyAttributes> ReadKeyAttributes(Session& session, CK_OBJECT_HANDLE object) {
  struct Ulong {
    CK_ATTRIBUTE_TYPE type;
    std::optional<CK_ULONG>* out;
  };
  struct Flag {
    CK_ATTRIBUTE_TYPE type;
    std::optional<bool>* out;
  };
  RawKeyAttributes a;
  const Ulong ulongs[] = {
      {CKA_CLASS, &a.object_class}, {CKA_KEY_TYPE, &a.key_type}, {CKA_VALUE_LEN, &a.value_len}};
  const Flag flags[] = {
      {CKA_TOKEN, &a.token},
      {CKA_PRIVATE, &a.is_private},
      {CKA_MODIFIABLE, &a.modifiable},
      {CKA_SENSITIVE, &a.sensitive},
      {CKA_EXTRACTABLE, &a.extractable},
      {CKA_ALWAYS_SENSITIVE, &a.always_sensitive},
      {CKA_NEVER_EXTRACTABLE, &a.never_extractable},
      {CKA_WRAP_WITH_TRUSTED, &a.wrap_with_trusted},
      {CKA_TRUSTED, &a.trusted},
      {CKA_ENCRYPT, &a.encrypt},
      {CKA_DECRYPT, &a.decrypt},
      {CKA_SIGN, &a.sign},
      {CKA_VERIFY, &a.verify},
      {CKA_WRAP, &a.wrap},
      {CKA_UNWRAP, &a.unwrap},
      {CKA_DERIVE, &a.derive},
      {CKA_COPYABLE, &a.copyable},
  };
  constexpr size_t kUlongs = sizeof(ulongs) / sizeof(ulongs[0]);
  constexpr size_t kFlags = sizeof(flags) / sizeof(flags[0]);
  CK_ULONG ulong_values[kUlongs] = {};
  CK_BBOOL flag_values[kFlags] = {};
  CK_ATTRIBUTE tmpl[kUlongs + kFlags];
  for (size_t i = 0; i < kUlongs; ++i) {
    tmpl[i] = CK_ATTRIBUTE{ulongs[i].type, &ulong_values[i], sizeof(CK_ULONG)};
  }
  for (size_t i = 0; i < kFlags; ++i) {
    tmpl[kUlongs + i] = CK_ATTRIBUTE{flags[i].type, &flag_values[i], sizeof(CK_BBOOL)};
  }
  const CK_RV rv = session.fns().C_GetAttributeValue(session.handle(), object, tmpl,
                                                     static_cast<CK_ULONG>(kUlongs + kFlags));
  // Attributes that do not apply to this object come back unavailable; the
  // rest are still filled in (§5.7).
  if (rv != CKR_OK && rv != CKR_ATTRIBUTE_TYPE_INVALID && rv != CKR_ATTRIBUTE_SENSITIVE) {
    return FromCkRv(rv, "C_GetAttributeValue");
  }
  for (size_t i = 0; i < kUlongs; ++i) {
    if (tmpl[i].ulValueLen == sizeof(CK_ULONG)) *ulongs[i].out = ulong_values[i];
  }
  for (size_t i = 0; i < kFlags; ++i) {
    if (tmpl[kUlongs + i].ulValueLen == sizeof(CK_BBOOL)) {
      *flags[i].out = flag_values[i] != CK_FALSE;
    }
  }
  return a;
}

}  // namespace tkms::pkcs11
