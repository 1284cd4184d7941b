// Fuzz target: the incremental chunked body decoder of tkms's own HTTP/1.1
// listener (web/http1_parser.h ChunkedDecoder, RFC 9112 §7.1), which reads
// request bodies as they arrive from an unauthenticated peer.
//
// Input: byte 0 chooses the body cap (0..255 * 4) and the trailer limit
// (16..271); byte 1 seeds the split points; the rest is the body as it
// arrives after the head.
//
// Properties checked on every input (a differential check of the decoder
// against itself under different arrival patterns):
//   * one Feed, byte-by-byte Feeds, and Feeds split at points chosen from
//     byte 1 give the same decoded bytes, the same consumed count, the same
//     final state and the same error text;
//   * the decoded output never exceeds cap + 1 bytes, and its capacity never
//     exceeds max(cap + 1, 30) (the decoder bounds its allocation);
//   * while kNeedMore every byte is consumed; otherwise consumed <= input;
//     kTooLarge means exactly cap + 1 bytes; kDone means at most cap;
//   * kError, and only kError, comes with an error text, one printable line.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/fuzz_target.h"
#include "web/http1_parser.h"

namespace {

namespace web = tkms::web;
using State = web::ChunkedDecoder::State;

constexpr const char* kTarget = "web_chunked_fuzz";

void Check(bool ok, const char* property) {
  if (!ok) tkms::fuzz::Violation(kTarget, property);
}

struct Outcome {
  std::string out;
  size_t consumed = 0;
  State state = State::kNeedMore;
  std::string detail;
};

// Feeds `body` in pieces ending at `ends` (ascending, the last one body.size()).
Outcome Decode(std::string_view body, const std::vector<size_t>& ends, size_t cap, size_t max_trailer) {
  web::ChunkedDecoder decoder(cap, max_trailer);
  Outcome o;
  size_t at = 0;
  for (const size_t end : ends) {
    const web::ChunkedDecoder::Step step = decoder.Feed(body.substr(at, end - at), o.out);
    Check(step.consumed <= end - at, "a Feed consumes at most its input");
    Check(step.state != State::kNeedMore || step.consumed == end - at, "kNeedMore consumes everything");
    Check(o.out.size() <= cap + 1, "out never exceeds cap + 1");
    Check(o.out.capacity() <= std::max<size_t>(cap + 1, 30), "out's capacity stays within cap + 1");
    o.consumed += step.consumed;
    o.state = step.state;
    if (step.state != State::kNeedMore) break;
    at = end;
  }
  o.detail = std::string(decoder.error_detail());
  Check(decoder.state() == o.state, "state() reports the last step");
  Check(decoder.decoded_bytes() == o.out.size(), "decoded_bytes() counts the output");
  return o;
}

void Same(const Outcome& a, const Outcome& b) {
  Check(a.out == b.out, "split feeds decode the same bytes");
  Check(a.consumed == b.consumed, "split feeds consume the same bytes");
  Check(a.state == b.state, "split feeds end in the same state");
  Check(a.detail == b.detail, "split feeds give the same error");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t cap = size_t{data[0]} * 4;
  const size_t max_trailer = 16 + size_t{data[0]};
  const uint8_t seed = data[1];
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);

  const Outcome once = Decode(body, {body.size()}, cap, max_trailer);
  Check(once.state != State::kNeedMore || once.consumed == body.size(), "kNeedMore consumed the input");
  Check(once.state != State::kTooLarge || once.out.size() == cap + 1, "kTooLarge holds cap + 1 bytes");
  Check(once.state != State::kDone || once.out.size() <= cap, "kDone holds at most cap bytes");
  Check((once.state == State::kError) == !once.detail.empty(), "an error text exactly with kError");
  for (const char c : once.detail) Check(c >= 0x20 && c < 0x7f, "the error text is printable ASCII");

  std::vector<size_t> every;
  for (size_t i = 1; i <= body.size(); ++i) every.push_back(i);
  if (body.empty()) every.push_back(0);
  Same(once, Decode(body, every, cap, max_trailer));

  // Pieces of pseudo-random lengths 1..(seed % 64 + 1).
  std::vector<size_t> ends;
  uint32_t x = seed * 2654435761u + 1;
  for (size_t at = 0; at < body.size();) {
    x = x * 1103515245u + 12345u;
    at = std::min(body.size(), at + 1 + (x >> 16) % (seed % 64 + 1));
    ends.push_back(at);
  }
  if (ends.empty()) ends.push_back(0);
  Same(once, Decode(body, ends, cap, max_trailer));
  return 0;
}
