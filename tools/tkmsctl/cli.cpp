// tkmsctl command line: see cli.h.
#include "tools/tkmsctl/cli.h"

#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "tools/tkmsctl/input_format.h"
#include "tools/tkmsctl/mikey_command.h"

#ifndef TKMS_VERSION
#define TKMS_VERSION "unknown"
#endif

namespace tkms::tkmsctl {
namespace {

int Emit(const CommandOutput& result, std::ostream& out, std::ostream& err) {
  out << result.out;
  err << result.err;
  out.flush();
  return result.exit_code;
}

int Run(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  CLI::App app{"Operator tool of the tkms MIKEY-TICKET Key Management Service.", "tkmsctl"};
  app.set_version_flag("--version", std::string("tkmsctl ") + TKMS_VERSION);
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success, 1 invalid input or refused message, 2 usage error.\n"
      "Documentation: docs/tkmsctl.md, docs/mikey-json.md.");

  CLI::App* mikey = app.add_subcommand("mikey", "Decode and encode MIKEY messages (RFC 3830, RFC 6043)");
  mikey->require_subcommand(1);

  std::string decode_path = "-";
  std::string format = "auto";
  bool compact = false;
  CLI::App* decode = mikey->add_subcommand(
      "decode",
      "Print a MIKEY message as JSON. Input: an HTTP message, SDP (a=key-mgmt:mikey), hex, base64 "
      "or raw bytes, detected in that order.");
  decode->add_option("input", decode_path, "FILE, or - for standard input")->capture_default_str();
  decode->add_option("-f,--format", format, "Input format instead of detection")
      ->check(CLI::IsMember({"auto", "http", "sdp", "hex", "base64", "raw"}))
      ->capture_default_str();
  decode->add_flag("-c,--compact", compact, "Print the JSON on one line");

  std::string encode_path = "-";
  CLI::App* encode = mikey->add_subcommand(
      "encode", "Encode the JSON view of a MIKEY message (docs/mikey-json.md); print one line of base64");
  encode->add_option("input", encode_path, "FILE, or - for standard input")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) {
      app.exit(e, out, err);  // --help, --version
      return kExitOk;
    }
    err << "tkmsctl: " << e.what() << "\nRun with --help for more information.\n";
    return kExitUsage;
  }

  const std::string& path = *decode ? decode_path : encode_path;
  auto input = ReadInputFile(path);
  if (!input.ok()) {
    err << "tkmsctl: " << input.error() << "\n";
    return kExitInvalid;
  }
  if (*decode) {
    DecodeCommandOptions options;
    options.format = InputFormatFromName(format).value_or(InputFormat::kAuto);
    options.compact = compact;
    return Emit(RunMikeyDecode(*input, options), out, err);
  }
  return Emit(RunMikeyEncode(*input), out, err);
}

}  // namespace

int RunCli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) noexcept {
  try {
    return Run(argc, argv, out, err);
  } catch (const std::exception& e) {
    err << "tkmsctl: internal error: " << e.what() << "\n";
  } catch (...) {
    err << "tkmsctl: internal error\n";
  }
  return kExitInvalid;
}

}  // namespace tkms::tkmsctl
