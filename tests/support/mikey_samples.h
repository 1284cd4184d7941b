// Sample MIKEY messages used across the tests, the fuzz seed corpus, the
// benchmarks and the committed vectors in tests/vectors/mikey/.
//
// Why: one place builds a realistic instance of every message type tkms deals
// with (RFC 6043 §4.2 exchanges, RFC 3830 messages, RFC 6509 SAKKE), so the
// codec, the CLI and the independent-decoder cross-check all test the same
// bytes. Field values are fixed (no randomness): MACs and encrypted data are
// placeholders of the right length, not results of real key derivations.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "firmware/mikey/message.h"

namespace tkms::mikey::samples {

struct Sample {
  std::string name;  // file stem in tests/vectors/mikey/, e.g. "request_init_psk"
  Message message;
};

// GoogleTest prints parameters with PrintTo: show the name, not the bytes.
inline void PrintTo(const Sample& sample, std::ostream* os) { *os << sample.name; }

Message RequestInitPsk();
Message RequestResp();
Message TransferInit();
Message TransferInitForked();
Message TransferResp();
Message ResolveInitPsk();
Message ResolveResp();
Message ErrorMessage();
Message PskInitRfc3830();
Message PkInitRfc3830();
Message DhInitRfc3830();
Message SakkeMessage();

// Every sample above, in a fixed order.
std::vector<Sample> All();

// The RFC 4567 §5.1 example messages (base64, as printed in the RFC).
inline constexpr const char* kRfc4567PskInitB64 =
    "AQAFgM0XflABAAAAAAAAAAAAAAsAyONQ6gAAAAAGEEoo2pee4hp2UaDX8ZE22YwKAAAPZG9uYWxkQGR1Y2suY29tAQAAAAAAAQAk"
    "0JKpgaVkDaawi9whVBtBt0KZ14ymNuu62+Nv3ozPLygwK/GbAV9iemnGUIZ19fWQUOSrzKTAv9zV";
inline constexpr const char* kRfc4567PskRespB64 =
    "AQEFgM0XflABAAAAAAAAAAAAAAYAyONQ6gAAAAAJAAAQbWlja2V5QG1vdXNlLmNvbQABn8HdGE5BMDXFIuGEga+62AgY5cc=";

}  // namespace tkms::mikey::samples
