// Fuzz target: the state file reader of tkms-ue offer / finish
// (tools/ue_cli/state_file.h), untrusted text read back from disk.
//
// The input is the file's text. Properties (besides no crash, leak, UB):
//   * a refusal is kInvalidArgument with a message that starts with the
//     file's name and is printable ASCII (no value, no escape sequence is
//     echoed to the terminal);
//   * an accepted state has printable, non-empty identities and non-empty
//     RANDRi, REQUEST_RESP and TRANSFER_INIT, and the input starts with the
//     magic line;
//   * what SerializeState writes for it reads back equal, and serialising
//     that again gives the same text (a fixed point).
#include <algorithm>
#include <string>
#include <string_view>

#include "tests/fuzz/fuzz_target.h"
#include "tools/ue_cli/state_file.h"

namespace {

constexpr const char* kTarget = "ue_state_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

bool Printable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7F;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = tkms::ue_cli::ParseState(text, "state");
  if (!parsed.ok()) {
    const std::string& m = parsed.error().message();
    Check(parsed.error().code() == tkms::StatusCode::kInvalidArgument, "refusals are kInvalidArgument");
    Check(m.rfind("state", 0) == 0, "messages start with the file's name");
    Check(Printable(m), "messages are printable ASCII");
    return 0;
  }
  const auto& s = *parsed;
  Check(text.rfind(tkms::ue_cli::kStateMagic, 0) == 0, "accepted text starts with the magic line");
  for (const std::string* id : {&s.initiator, &s.responder, &s.kms_identity}) {
    Check(tkms::ue_cli::CheckPrintable(*id, "id").ok(), "identities are printable and non-empty");
  }
  Check(!s.randri.empty() && !s.request_resp.empty() && !s.transfer_init.empty(), "byte fields are non-empty");
  const std::string written = tkms::ue_cli::SerializeState(s);
  auto back = tkms::ue_cli::ParseState(written, "state");
  Check(back.ok() && *back == s, "SerializeState reads back equal");
  Check(back.ok() && tkms::ue_cli::SerializeState(*back) == written, "SerializeState is a fixed point");
  return 0;
}
