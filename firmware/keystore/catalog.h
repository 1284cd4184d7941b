// Catalog: the keys a Keystore knows, by identity (class, label, id), with
// the session-object copies operations use; and the reading of key objects
// from the token into catalogue entries.
//
// Why: lookups must be fast and must never silently pick one of several
// objects, so the keystore keeps its own index of the token's key objects
// (PKCS#11 v2.40 §5.7 C_FindObjects, C_GetAttributeValue) and resolves
// selectors against it: exactly one match, or an error. Session copies
// (C_CopyObject with CKA_TOKEN = FALSE, §5.7; §4.4 session objects) live as
// long as the catalogue says their source is current. The Keystore guards a
// Catalog with its lock: read under the shared lock, changed under the
// exclusive lock. Internal to firmware/keystore.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "firmware/base/status.h"
#include "firmware/keystore/key_info.h"
#include "firmware/keystore/token_key.h"
#include "pkcs11/pkcs11_api.h"
#include "pkcs11/session.h"

namespace tkms::keystore {

// A catalogue key: objects are told apart by class, label and id.
struct Identity {
  CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
  std::string label;
  Bytes id;
  bool operator<(const Identity& other) const;
};
Identity IdentityOf(const KeyEntry& entry);

CK_OBJECT_CLASS ToCkClass(KeyClass key_class);

// What the keystore needs to know about one object. nullopt for objects that
// are not keys (or vanished meanwhile).
Result<std::optional<KeyEntry>> ReadEntry(pkcs11::Session& session, CK_OBJECT_HANDLE handle);
// Every key object on the token (token objects only: never our copies).
Result<std::vector<KeyEntry>> ScanToken(pkcs11::Session& session);

class Catalog {
 public:
  using Entries = std::map<Identity, std::shared_ptr<KeyEntry>>;

  const Entries& entries() const { return entries_; }

  // Replaces the catalogue with `scanned` (a ScanToken result): known keys
  // keep their entry objects, so outstanding references follow them to their
  // new handles; keys that are gone are marked dead; duplicates are marked
  // ambiguous. Copies are made in `session` (the pinned login session) when
  // `copies_enabled`.
  Status Replace(pkcs11::Session& session, bool copies_enabled, std::vector<KeyEntry> scanned);
  // Adds a key just created on the token (replacing a stale entry of the same
  // identity) and returns what it is.
  Result<KeyInfo> Add(pkcs11::Session& session, bool copies_enabled, KeyEntry entry);
  // Marks the entry dead, drops its copy and forgets it.
  void Forget(const Identity& identity);
  // Destroys the session copy of `identity` (before its token object goes).
  void DropCopy(const Identity& identity) { copies_.erase(identity); }
  // Destroys every copy (before a logout: the token drops private session
  // objects at logout, and their handles must not be destroyed later).
  void DropCopies();

  // The one key of `key_class` the selector names: kInvalidArgument for an
  // empty selector, kNotFound for none, kFailedPrecondition for several (or
  // for one identity held by several token objects).
  Result<std::shared_ptr<KeyEntry>> MatchOne(const KeySelector& selector, KeyClass key_class) const;
  // Every key of any class the selector names (both halves of a key pair).
  std::vector<std::shared_ptr<KeyEntry>> MatchAll(const KeySelector& selector) const;
  // The entry with exactly this identity, or null.
  std::shared_ptr<KeyEntry> Find(const Identity& identity) const;
  // kFailedPrecondition if a key has this label, or this non-empty id.
  Status CheckUnused(const std::string& label, const Bytes& id) const;
  // The highest ticket key id (of that type, if given); kNotFound if there
  // is none.
  Result<uint32_t> CurrentTicketKeyId(std::optional<KeyType> type = std::nullopt) const;

 private:
  struct Copy {
    CK_OBJECT_HANDLE source = pkcs11::kInvalidHandle;
    pkcs11::SessionObject object;
  };

  // Points `entry` at a session copy of its token object, or at the token
  // object itself when copies are disabled or the token refuses the copy (a
  // non-modifiable or non-copyable key). Only secret keys are copied: they
  // are the hot path.
  Status Attach(pkcs11::Session& session, bool enabled, KeyEntry& entry);

  Entries entries_;
  std::map<Identity, Copy> copies_;  // owned by the login session
};

}  // namespace tkms::keystore
