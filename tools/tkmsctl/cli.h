// The tkmsctl command line: `tkmsctl mikey decode [FILE|-]` and
// `tkmsctl mikey encode [FILE|-]` (docs/tkmsctl.md), parsed with CLI11.
//
// Why: main.cpp stays a one-liner and the argument handling — help, version,
// usage errors (exit 2), input reading with its size bound — is in the
// tkms_tkmsctl library. RunCli never throws.
#pragma once

#include <ostream>

namespace tkms::tkmsctl {

// Runs tkmsctl with `argv`, writing to `out` and `err`; returns the exit status.
int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) noexcept;

}  // namespace tkms::tkmsctl
