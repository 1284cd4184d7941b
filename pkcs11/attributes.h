// Attribute templates and object queries (PKCS#11 v2.40 §4.1 CK_ATTRIBUTE,
// §5.7 C_GetAttributeValue, C_FindObjectsInit/C_FindObjects/Final).
//
// Why: every key the keystore creates is described by a template of
// attributes whose values must stay valid for the duration of the call, and
// reading attributes back follows the two-call length convention with
// per-attribute "unavailable" results (§5.7: CK_UNAVAILABLE_INFORMATION for
// sensitive or invalid attributes). Keeping that in one place keeps the
// keystore free of pointer bookkeeping. Values are held in SecretBytes, so a
// CKA_VALUE placed in a template is wiped when the template is destroyed.
// Used by pkcs11/ and the keystore's sources (firmware/keystore); which
// values a key gets is the keystore's policy, not this file's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/secret_bytes.h"
#include "firmware/base/status.h"
#include "pkcs11/pkcs11_api.h"
#include "pkcs11/session.h"

namespace tkms::pkcs11 {

// A template whose values it owns. Build it, then pass data()/size().
class AttributeTemplate {
 public:
  AttributeTemplate& Bool(CK_ATTRIBUTE_TYPE type, bool value);
  AttributeTemplate& Ulong(CK_ATTRIBUTE_TYPE type, CK_ULONG value);
  AttributeTemplate& Bytes(CK_ATTRIBUTE_TYPE type, ByteSpan value);
  AttributeTemplate& Text(CK_ATTRIBUTE_TYPE type, std::string_view value);

  // The CK_ATTRIBUTE array; valid until the template is changed or destroyed.
  CK_ATTRIBUTE* data();
  CK_ULONG size() const { return static_cast<CK_ULONG>(values_.size()); }

 private:
  std::vector<std::pair<CK_ATTRIBUTE_TYPE, SecretBytes>> values_;
  std::vector<CK_ATTRIBUTE> attributes_;
};

// Handles of every object matching `tmpl` (empty template: every object the
// session can see), at most `limit` of them.
Result<std::vector<CK_OBJECT_HANDLE>> FindObjects(Session& session, AttributeTemplate& tmpl,
                                                  size_t limit = 4096);

// Reads one attribute of variable length (label, id, EC params/point).
// nullopt when the object has no such attribute or it is sensitive.
Result<std::optional<std::vector<uint8_t>>> ReadBytesAttribute(Session& session,
                                                               CK_OBJECT_HANDLE object,
                                                               CK_ATTRIBUTE_TYPE type);

// The fixed-size attributes of a key object that the keystore reports. Each
// is nullopt when the object does not have it.
struct RawKeyAttributes {
  std::optional<CK_OBJECT_CLASS> object_class;
  std::optional<CK_KEY_TYPE> key_type;
  std::optional<CK_ULONG> value_len;
  std::optional<bool> token, is_private, modifiable, sensitive, extractable, always_sensitive,
      never_extractable, wrap_with_trusted, trusted, encrypt, decrypt, sign, verify, wrap, unwrap,
      derive, copyable;
};
Result<RawKeyAttributes> ReadKeyAttributes(Session& session, CK_OBJECT_HANDLE object);

}  // namespace tkms::pkcs11
