#include "firmware/keystore/key_policy.h"

namespace tkms::keystore {
namespace {

using pkcs11::AttributeTemplate;

void MakeAes(Policy& p) {
  p.ck_type = CKK_AES;
  p.keygen = CKM_AES_KEY_GEN;
  p.value_len = 32;
}

void MakeHmac(Policy& p, size_t len) {
  p.ck_type = CKK_GENERIC_SECRET;
  p.keygen = CKM_GENERIC_SECRET_KEY_GEN;
  p.value_len = len;
  p.sign = p.verify = true;
}

bool IsHmac(KeyType type) { return type == KeyType::kHmacSha256 || type == KeyType::kHmacSha1; }

size_t HmacLength(KeyType type) { return type == KeyType::kHmacSha1 ? 20 : 32; }

Result<Policy> TicketPolicy(KeyType type) {
  Policy p;
  if (type == KeyType::kAes256) {
    MakeAes(p);
    p.encrypt = p.decrypt = true;
  } else if (type == KeyType::kHmacSha256) {
    MakeHmac(p, 32);
  } else {
    return InvalidArgument("ticket keys are aes-256 or hmac-sha256 (32 bytes, so they wrap with RFC 3394)");
  }
  p.extractable = true;
  p.wrap_with_trusted = true;
  return p;
}

Result<Policy> GenericPolicy(KeyType type) {
  Policy p;
  if (type == KeyType::kAes256) {
    MakeAes(p);
    p.encrypt = p.decrypt = true;
  } else if (IsHmac(type)) {
    MakeHmac(p, HmacLength(type));
  } else {
    return InvalidArgument("generic keys are aes-256 or hmac keys");
  }
  return p;
}

}  // namespace

Result<Policy> PolicyFor(KeyType type, KeyUsage usage) {
  Policy p;
  switch (usage) {
    case KeyUsage::kTicket:
      return TicketPolicy(type);
    case KeyUsage::kUserPsk:
      if (!IsHmac(type)) return InvalidArgument("user PSKs are hmac-sha256 or hmac-sha1 keys");
      MakeHmac(p, HmacLength(type));
      return p;
    case KeyUsage::kWrapping:
      if (type != KeyType::kAes256) return InvalidArgument("wrapping keys are aes-256");
      MakeAes(p);
      p.wrap = p.unwrap = true;
      p.modifiable = false;
      return p;
    case KeyUsage::kGeneric:
      return GenericPolicy(type);
    case KeyUsage::kProvisioningCounter:
      // The attributes of a generic HMAC-SHA-256 key, as older tokens hold it.
      if (type != KeyType::kHmacSha256) return InvalidArgument("the provisioning counter key is hmac-sha256");
      MakeHmac(p, 32);
      return p;
    case KeyUsage::kSigning:
      return InvalidArgument("signing keys are ec-p256 key pairs");
    case KeyUsage::kTlsServer:
      return InvalidArgument("TLS server keys are rsa-2048 key pairs");
  }
  return InvalidArgument("unknown key usage");
}

std::optional<KeyType> DefaultImportType(KeyUsage usage, size_t value_bytes) {
  switch (usage) {
    case KeyUsage::kUserPsk:
    case KeyUsage::kGeneric:
      return value_bytes >= 32 ? KeyType::kHmacSha256 : KeyType::kHmacSha1;
    case KeyUsage::kTicket:
    case KeyUsage::kWrapping:
      return KeyType::kAes256;
    case KeyUsage::kSigning:
    case KeyUsage::kProvisioningCounter:
    case KeyUsage::kTlsServer:
      return std::nullopt;
  }
  return std::nullopt;
}

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

namespace {

// A key pair that only signs and verifies: the attributes every such usage
// shares (never extractable, sensitive, not modifiable, no encryption,
// wrapping or derivation); each usage adds its key type's own.
KeyPairTemplates SignOnlyKeyPair(CK_KEY_TYPE key_type, const std::string& label, const Bytes& id) {
  KeyPairTemplates t;
  t.public_key.Ulong(CKA_CLASS, CKO_PUBLIC_KEY)
      .Ulong(CKA_KEY_TYPE, key_type)
      .Bool(CKA_TOKEN, true)
      .Bool(CKA_PRIVATE, false)
      .Bool(CKA_MODIFIABLE, false)
      .Bool(CKA_VERIFY, true)
      .Bool(CKA_ENCRYPT, false)
      .Bool(CKA_WRAP, false)
      .Bool(CKA_DERIVE, false)
      .Text(CKA_LABEL, label)
      .Bytes(CKA_ID, id);
  t.private_key.Ulong(CKA_CLASS, CKO_PRIVATE_KEY)
      .Ulong(CKA_KEY_TYPE, key_type)
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
  return t;
}

}  // namespace

KeyPairTemplates SigningKeyPairTemplates(const std::string& label, const Bytes& id) {
  KeyPairTemplates t = SignOnlyKeyPair(CKK_EC, label, id);
  t.public_key.Bytes(CKA_EC_PARAMS, kP256Params);
  return t;
}

KeyPairTemplates TlsKeyPairTemplates(const std::string& label, const Bytes& id) {
  KeyPairTemplates t = SignOnlyKeyPair(CKK_RSA, label, id);
  t.public_key.Bool(CKA_VERIFY_RECOVER, false)
      .Ulong(CKA_MODULUS_BITS, kTlsKeyModulusBits)
      .Bytes(CKA_PUBLIC_EXPONENT, kTlsKeyPublicExponent);
  t.private_key.Bool(CKA_SIGN_RECOVER, false);
  return t;
}

AttributeTemplate TrustedWrappingKeyTemplate(const std::string& label, const Bytes& id,
                                             const SecretBytes& value) {
  AttributeTemplate t;
  t.Ulong(CKA_CLASS, CKO_SECRET_KEY)
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
  return t;
}

Status CheckNewKeyName(const std::string& label, const Bytes& id, KeyUsage usage) {
  if (label.empty() || label.size() > kMaxLabelBytes) {
    return InvalidArgument("key label must be 1 to " + std::to_string(kMaxLabelBytes) + " bytes");
  }
  if (id.size() > kMaxIdBytes) {
    return InvalidArgument("key id must be at most " + std::to_string(kMaxIdBytes) + " bytes");
  }
  if (label.substr(0, kTicketKeyLabelPrefix.size()) == kTicketKeyLabelPrefix) {
    const std::optional<uint32_t> n = ParseTicketKeyLabel(label);
    if (usage != KeyUsage::kTicket || !n.has_value() || id != TicketKeyId(*n)) {
      return InvalidArgument("labels starting with '" + std::string(kTicketKeyLabelPrefix) +
                             "' are reserved for ticket keys (label tkms-ticket-<n>, id = n "
                             "as 4 bytes big-endian)");
    }
  }
  if ((label == kCounterKeyLabel) != (usage == KeyUsage::kProvisioningCounter)) {
    return InvalidArgument("the label '" + std::string(kCounterKeyLabel) +
                           "' is reserved for the provisioning counter key, and that key has no "
                           "other label");
  }
  if (IsTlsKeyLabel(label) != (usage == KeyUsage::kTlsServer) ||
      (label.substr(0, kTlsKeyLabelPrefix.size()) == kTlsKeyLabelPrefix && !IsTlsKeyLabel(label))) {
    return InvalidArgument("labels starting with '" + std::string(kTlsKeyLabelPrefix) +
                           "' are reserved for TLS server keys, and those keys have no other label "
                           "(e.g. '" + std::string(kDefaultTlsKeyLabel) + "')");
  }
  if (usage == KeyUsage::kTlsServer && id.empty()) {
    return InvalidArgument("a TLS server key pair needs a CKA_ID shared by its two halves");
  }
  return Status::Ok();
}

std::optional<KeyUsage> InferUsage(const KeyEntry& e) {
  const KeyAttributes& a = e.info.attributes;
  if (e.ck_type == CKK_EC) return KeyUsage::kSigning;
  if (e.ck_type == CKK_RSA) {
    if (IsTlsKeyLabel(e.info.label)) return KeyUsage::kTlsServer;
    return std::nullopt;  // not a key tkms makes
  }
  if (e.ck_class != CKO_SECRET_KEY) return std::nullopt;
  if (a.wrap_with_trusted && e.info.ticket_key_id.has_value()) return KeyUsage::kTicket;
  if (e.ck_type == CKK_AES && (a.wrap || a.unwrap)) return KeyUsage::kWrapping;
  if (e.ck_type == CKK_GENERIC_SECRET && a.sign && !a.extractable) {
    // The counter key has a PSK's attributes; its reserved label tells it apart.
    return e.info.label == kCounterKeyLabel ? KeyUsage::kProvisioningCounter : KeyUsage::kUserPsk;
  }
  return KeyUsage::kGeneric;
}

Status CheckProtected(const KeyEntry& e) {
  const KeyAttributes& a = e.info.attributes;
  if (!a.sensitive || !a.is_private || (a.extractable && !a.wrap_with_trusted)) {
    return FailedPrecondition("key '" + e.info.label +
                              "' is not protected by the token (it must be private, sensitive, "
                              "and non-extractable or wrap-with-trusted): refusing to use it");
  }
  return Status::Ok();
}

Status CheckTlsServerKey(const KeyEntry& e) {
  const KeyAttributes& a = e.info.attributes;
  const std::string name = "key '" + e.info.label + "'";
  if (e.ck_class != CKO_PRIVATE_KEY || e.ck_type != CKK_RSA || e.info.type != KeyType::kRsa2048) {
    return FailedPrecondition(name + " is not an RSA-2048 private key (" + e.info.ck_key_type + ", " +
                              std::to_string(e.info.bits) + " bits)");
  }
  if (!IsTlsKeyLabel(e.info.label)) {
    return FailedPrecondition(name + " is not labelled as a TLS server key ('" + std::string(kTlsKeyLabelPrefix) +
                              "...')");
  }
  if (!a.token || !a.is_private || !a.sensitive || a.extractable || !a.always_sensitive || !a.never_extractable) {
    return FailedPrecondition(name +
                              " is not protected by the token (it must be a private token object, sensitive, "
                              "never extractable and always sensitive): refusing to use it for TLS");
  }
  if (!a.sign || a.decrypt || a.unwrap || a.derive) {
    return FailedPrecondition(name + " must be able to sign and nothing else (no decrypt, unwrap or derive): "
                              "refusing to use it for TLS");
  }
  return Status::Ok();
}

}  // namespace tkms::keystore
