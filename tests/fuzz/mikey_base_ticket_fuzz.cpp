// Fuzz target: the Ticket Data of the MIKEY base ticket (RFC 6043 Appendix
// A), DecodeBaseTicketData / EncodeBaseTicketData.
//
// Properties: no crash or sanitizer report; accepted Ticket Data re-encodes
// to exactly the input and decodes again to the same model; decoding at a
// base offset changes only the offsets reported in errors.
#include <algorithm>

#include "firmware/mikey/codec.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

constexpr const char* kTarget = "mikey_base_ticket_fuzz";
constexpr size_t kBaseOffset = 1000;

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using tkms::mikey::DecodeBaseTicketData;
  using tkms::mikey::EncodeBaseTicketData;
  const tkms::ByteSpan input(data, size);

  auto ticket = DecodeBaseTicketData(input);
  auto shifted = DecodeBaseTicketData(input, kBaseOffset);
  Check(ticket.ok() == shifted.ok(), "the base offset does not change the outcome");
  if (!ticket.ok()) {
    Check(shifted.error().rule == ticket.error().rule &&
              shifted.error().offset == ticket.error().offset + kBaseOffset,
          "errors at a base offset are shifted by exactly that offset");
    return 0;
  }
  Check(*shifted == *ticket, "the base offset does not change the decoded Ticket Data");

  auto encoded = EncodeBaseTicketData(*ticket);
  Check(encoded.ok(), "EncodeBaseTicketData accepts every decoded Ticket Data");
  Check(std::equal(encoded->begin(), encoded->end(), input.begin(), input.end()),
        "EncodeBaseTicketData(DecodeBaseTicketData(b)) == b");
  auto again = DecodeBaseTicketData(*encoded);
  Check(again.ok() && *again == *ticket, "the re-encoded Ticket Data decodes to the same model");
  return 0;
}
