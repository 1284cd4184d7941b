// Fuzz target: the SDP helpers of tools/ue/sdp.h (untrusted SDP from the peer).
//
// The input is the SDP text. Properties (besides no crash, leak, UB):
//   * ExtractMikeyKeyMgmt accepted => a non-empty message of at most
//     kMaxMikeyBytes, and the input has an "a=key-mgmt:mikey " line;
//   * AddMikeyKeyMgmt(input, m) accepted => ExtractMikeyKeyMgmt of the result
//     is m (the round trip), for m = a few bytes of the input;
//   * AudioRtpPort accepted => a port in 1..65535;
//   * AudioConnectionAddress accepted => 7-15 characters of digits and dots
//     found in the input;
//   * BuildAudioSdp with a message taken from the input round-trips through
//     ExtractMikeyKeyMgmt, AudioRtpPort and AudioConnectionAddress.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_target.h"
#include "tools/ue/sdp.h"

namespace {

constexpr const char* kTarget = "ue_sdp_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto extracted = tkms::ue::ExtractMikeyKeyMgmt(text); extracted.ok()) {
    Check(!extracted->empty() && extracted->size() <= tkms::ue::kMaxMikeyBytes, "extracted size in bounds");
    Check(text.find("a=key-mgmt:") != std::string_view::npos, "extracted from a key-mgmt line");
  }
  if (auto port = tkms::ue::AudioRtpPort(text); port.ok()) Check(*port >= 1, "port >= 1");
  if (auto address = tkms::ue::AudioConnectionAddress(text); address.ok()) {
    Check(address->size() >= 7 && address->size() <= 15 &&
              address->find_first_not_of("0123456789.") == std::string::npos,
          "address is a dotted IPv4 literal");
    Check(text.find(*address) != std::string_view::npos, "address taken from the input");
  }

  const std::vector<uint8_t> message(data, data + std::min<size_t>(size, 64));
  if (!message.empty()) {
    if (auto added = tkms::ue::AddMikeyKeyMgmt(text, message); added.ok()) {
      auto back = tkms::ue::ExtractMikeyKeyMgmt(*added);
      Check(back.ok() && *back == message, "Extract(Add(sdp, m)) == m");
    }
    tkms::ue::AudioSdpParams p;
    p.session_id = size;
    p.rtp_port = static_cast<uint16_t>(1 + size % 65535);
    auto sdp = tkms::ue::BuildAudioSdp(p, message);
    Check(sdp.ok(), "BuildAudioSdp accepts a 1..64-byte message");
    auto back = tkms::ue::ExtractMikeyKeyMgmt(*sdp);
    Check(back.ok() && *back == message, "Extract(Build(m)) == m");
    auto port = tkms::ue::AudioRtpPort(*sdp);
    Check(port.ok() && *port == p.rtp_port, "AudioRtpPort(Build(port)) == port");
    auto address = tkms::ue::AudioConnectionAddress(*sdp);
    Check(address.ok() && *address == p.address, "AudioConnectionAddress(Build(address)) == address");
  }
  return 0;
}
