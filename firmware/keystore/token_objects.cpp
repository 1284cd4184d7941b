// Non-key token objects: the provisioning anchor (CKO_CERTIFICATE, X.509) and
// the bundle version counter slots (private CKO_DATA), named by CKA_LABEL
// (PKCS#11 v2.40 §4.5 data objects, §4.6 certificate objects; §5.7
// C_CreateObject / C_DestroyObject). What they mean is provisioning_store.h's.
#include <utility>

#include "firmware/keystore/guarded.h"
#include "firmware/keystore/keystore.h"
#include "pkcs11/attributes.h"
#include "pkcs11/ck_status.h"

namespace tkms::keystore {

using pkcs11::AttributeTemplate;
using pkcs11::Session;
using pkcs11::SessionPool;

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

// The template of a new object: a public, non-modifiable X.509 certificate,
// or a private (encrypted at rest), non-modifiable data object.
AttributeTemplate ObjectTemplate(TokenObjectKind kind, std::string_view label, ByteSpan value) {
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
  auto found = pkcs11::FindObjects(session, tmpl, 2);
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
    auto value = pkcs11::ReadBytesAttribute(**lease, **handle, CKA_VALUE);
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
    AttributeTemplate tmpl = ObjectTemplate(kind, label, value);
    CK_OBJECT_HANDLE handle = pkcs11::kInvalidHandle;
    return pkcs11::FromCkRv(session.fns().C_CreateObject(session.handle(), tmpl.data(), tmpl.size(), &handle),
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
    return pkcs11::FromCkRv(session.fns().C_DestroyObject(session.handle(), **existing), "C_DestroyObject");
  });
}

}  // namespace tkms::keystore
