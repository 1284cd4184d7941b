// mikey_codec_bench: throughput of the MIKEY codec on two typical messages,
// against the cost floor of producing an owned copy of the same bytes.
//
// Why: the KMS decodes every Ticket Request / Resolve it receives and encodes
// every response; this measures both directions on a REQUEST_INIT_PSK (what
// an Initiator sends: 256 bytes, 7 payloads including a TP) and a
// RESOLVE_RESP (what the KMS answers: 197 bytes, 6 payloads). BM_CopyBaseline copies the encoded message into a fresh
// std::vector in the same run: decode and encode allocate an owned model or
// buffer, so a copy is the least they could cost, and docs/benchmarks.md
// reports each figure as a multiple of it (which is less sensitive to the
// machine than nanoseconds).
//
//   BM_Decode/<msg>               Decode(bytes) with the composition rules
//   BM_DecodeNoComposition/<msg>  Decode(bytes) with check_composition=false
//   BM_Encode/<msg>               Encode(model) of the decoded message
//   BM_CopyBaseline/<msg>         std::vector<uint8_t>(bytes) (the ceiling)
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "firmware/mikey/codec.h"
#include "tests/support/mikey_samples.h"

namespace {

using tkms::mikey::Bytes;
using tkms::mikey::Decode;
using tkms::mikey::DecodeOptions;
using tkms::mikey::Encode;
using tkms::mikey::Message;

using MakeMessage = Message (*)();

// The encoded sample, or an empty vector (and a skipped benchmark) if the
// codec refuses it.
Bytes EncodedSample(benchmark::State& state, MakeMessage make) {
  auto encoded = Encode(make());
  if (!encoded.ok()) {
    state.SkipWithError(("sample does not encode: " + encoded.error().ToString()).c_str());
    return {};
  }
  return *encoded;
}

void Report(benchmark::State& state, size_t message_bytes) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) *
                          static_cast<int64_t>(message_bytes));
  state.counters["msg_bytes"] = static_cast<double>(message_bytes);
}

void DecodeLoop(benchmark::State& state, MakeMessage make, const DecodeOptions& options) {
  const Bytes bytes = EncodedSample(state, make);
  if (bytes.empty()) return;
  if (!Decode(bytes, options).ok()) {
    state.SkipWithError("sample does not decode");
    return;
  }
  for (auto _ : state) {
    auto message = Decode(bytes, options);
    benchmark::DoNotOptimize(message);
  }
  Report(state, bytes.size());
}

void BM_Decode(benchmark::State& state, MakeMessage make) { DecodeLoop(state, make, DecodeOptions{}); }

void BM_DecodeNoComposition(benchmark::State& state, MakeMessage make) {
  DecodeOptions options;
  options.check_composition = false;
  DecodeLoop(state, make, options);
}

void BM_Encode(benchmark::State& state, MakeMessage make) {
  const Bytes bytes = EncodedSample(state, make);
  if (bytes.empty()) return;
  auto model = Decode(bytes);
  if (!model.ok()) {
    state.SkipWithError("sample does not decode");
    return;
  }
  for (auto _ : state) {
    auto encoded = Encode(*model);
    benchmark::DoNotOptimize(encoded);
  }
  Report(state, bytes.size());
}

void BM_CopyBaseline(benchmark::State& state, MakeMessage make) {
  const Bytes bytes = EncodedSample(state, make);
  if (bytes.empty()) return;
  for (auto _ : state) {
    std::vector<uint8_t> copy(bytes.begin(), bytes.end());
    benchmark::DoNotOptimize(copy.data());
    benchmark::ClobberMemory();
  }
  Report(state, bytes.size());
}

namespace samples = tkms::mikey::samples;

BENCHMARK_CAPTURE(BM_Decode, request_init_psk, &samples::RequestInitPsk);
BENCHMARK_CAPTURE(BM_Decode, resolve_resp, &samples::ResolveResp);
BENCHMARK_CAPTURE(BM_DecodeNoComposition, request_init_psk, &samples::RequestInitPsk);
BENCHMARK_CAPTURE(BM_DecodeNoComposition, resolve_resp, &samples::ResolveResp);
BENCHMARK_CAPTURE(BM_Encode, request_init_psk, &samples::RequestInitPsk);
BENCHMARK_CAPTURE(BM_Encode, resolve_resp, &samples::ResolveResp);
BENCHMARK_CAPTURE(BM_CopyBaseline, request_init_psk, &samples::RequestInitPsk);
BENCHMARK_CAPTURE(BM_CopyBaseline, resolve_resp, &samples::ResolveResp);

}  // namespace

BENCHMARK_MAIN();
