// Guarded: the keystore's exception barrier.
//
// Why: no exception leaves the keystore (its callers, and the PKCS#11 module
// under it, are written for Status/Result only; an allocation failure inside
// std::map must not unwind through tkmsd's request path). Every public entry
// point runs its body through Guarded, which turns any exception into
// kInternal naming the entry point. Internal to firmware/keystore.
#pragma once

#include <string>
#include <string_view>

#include "firmware/base/status.h"

namespace tkms::keystore {

template <typename Fn>
auto Guarded(std::string_view what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (...) {
    return Internal(std::string(what) + ": unexpected exception");
  }
}

}  // namespace tkms::keystore
