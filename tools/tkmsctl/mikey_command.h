// The `tkmsctl mikey decode` and `tkmsctl mikey encode` commands as plain
// functions from input bytes to output text and an exit status.
//
// Why: the CLI (cli.h) only parses arguments and reads the input; keeping the
// commands here lets the unit tests run them without a process. decode reads
// the encodings of input_format.h (RFC 4567 SDP, TS 33.328 Annex A HTTP,
// hex, base64, raw) and prints the JSON view of mikey_json.h; encode reads
// that JSON and prints the message in base64 (the encoding of RFC 4567 and
// TS 33.328 Annex A). Error messages start with "tkmsctl: ".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "firmware/base/byte_reader.h"
#include "firmware/base/status.h"
#include "tools/tkmsctl/input_format.h"

namespace tkms::tkmsctl {

// Exit status of tkmsctl (docs/tkmsctl.md).
inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalid = 1;  // invalid input, refused message, I/O error
inline constexpr int kExitUsage = 2;    // bad command line

struct CommandOutput {
  int exit_code = kExitOk;
  std::string out;  // for standard output
  std::string err;  // for standard error
};

struct DecodeCommandOptions {
  InputFormat format = InputFormat::kAuto;
  bool compact = false;  // one-line JSON
};

// decode: input (any format of input_format.h) -> JSON text + "\n".
CommandOutput RunMikeyDecode(ByteSpan input, const DecodeCommandOptions& options = {});

// encode: JSON text -> one line of base64 + "\n".
CommandOutput RunMikeyEncode(ByteSpan input);

// Reads `path` ("-": standard input) completely, refusing more than `limit`
// bytes. The error text names the file and the reason.
Result<std::vector<uint8_t>, std::string> ReadInputFile(const std::string& path,
                                                        size_t limit = kMaxInputBytes);

}  // namespace tkms::tkmsctl
