#include "pkcs11/key_selector.h"

#include "firmware/base/encoding.h"
#include "pkcs11/uri.h"

namespace tkms::pkcs11 {

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

}  // namespace tkms::pkcs11
