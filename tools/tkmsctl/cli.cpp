// tkmsctl command line: see cli.h.
#include "tools/tkmsctl/cli.h"

#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include "firmware/keystore/key_info.h"
#include "tools/tkmsctl/bundle_commands.h"
#include "tools/tkmsctl/input_format.h"
#include "tools/tkmsctl/keystore_commands.h"
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

// Options every token/key/user command takes: where the token is and how to
// log in (PINs from files or the environment only).
void AddKeystoreOptions(CLI::App* cmd, KeystoreCommandOptions& ks, bool with_json = false) {
  cmd->add_option("--module", ks.module_path,
                  "PKCS#11 module (default $TKMS_PKCS11_MODULE or " + DefaultModulePath() + ")");
  cmd->add_option("--state-dir", ks.state_dir,
                  "SoftHSM2 state directory made by 'token init --state-dir' (uses DIR/softhsm2.conf)");
  cmd->add_option("--token", ks.token, "Token label, serial:SERIAL, or pkcs11: URI")->capture_default_str();
  cmd->add_option("--pin-file", ks.pin_file, "File with the user PIN (mode 0600); default $TKMS_PIN");
  if (with_json) cmd->add_flag("--json", ks.json, "Print JSON");
}

using Action = std::function<CommandOutput()>;

// The parsed arguments of the token/key/user commands, and the command to run.
struct KeystoreCli {
  KeystoreCommandOptions ks;
  TokenInitOptions init;
  KeyGenerateOptions gen;
  std::string destroy_key;
  std::string rotate_type = "hmac-sha256";
  std::string export_key, export_wrapping, export_out;
  KeyImportWrappedOptions imp;
  WrappingKeyImportOptions wk;
  UserAddOptions add;
  std::string remove_who;
  std::optional<std::string> anchor_pin;
  TlsKeyOptions tls_key;
  TlsCsrOptions tls_csr;
  Action action;
};

// tkmsctl token | key | user: subcommands whose callbacks set `c.action`.
void AddKeystoreCommands(CLI::App& app, KeystoreCli& c) {
  KeystoreCommandOptions& ks = c.ks;
  Action& action = c.action;
  CLI::App* token = app.add_subcommand("token", "Initialise and inspect the PKCS#11 token");
  token->require_subcommand(1);
  TokenInitOptions& init = c.init;
  CLI::App* token_init = token->add_subcommand(
      "init", "SoftHSM2 (--state-dir): create a token; other modules: check the token is usable");
  AddKeystoreOptions(token_init, ks);
  token_init->add_option("--label", init.label, "Label of the new token")->capture_default_str();
  token_init->add_option("--so-pin-file", init.so_pin_file, "File with the SO PIN; default $TKMS_SO_PIN");
  token_init->add_flag("--generate-pins", init.generate_pins,
                       "Generate both PINs into DIR/token.pin and DIR/so.pin (mode 0600)");
  token_init->add_option("--provisioning-anchor", init.provisioning_anchor,
                         "Pin this CA certificate (PEM or DER) as the trust anchor of signed configuration bundles");
  token_init->callback([&] { action = [&] { return RunTokenInit(ks, init); }; });
  CLI::App* token_status = token->add_subcommand("status", "Show the module, its tokens, and (with a PIN) the login");
  AddKeystoreOptions(token_status, ks, true);
  token_status->callback([&] { action = [&] { return RunTokenStatus(ks); }; });
  CLI::App* token_anchor = token->add_subcommand(
      "anchor", "Show the pinned provisioning anchor, or pin one (--pin FILE) into an existing token");
  AddKeystoreOptions(token_anchor, ks);
  token_anchor->add_option("--pin", c.anchor_pin,
                           "Pin this CA certificate (PEM or DER) if the token pins none (an anchor is never replaced)");
  token_anchor->callback([&] { action = [&] { return RunTokenAnchor(ks, c.anchor_pin); }; });

  CLI::App* key = app.add_subcommand("key", "Generate, list, rotate, clone and destroy keys in the token");
  key->require_subcommand(1);
  KeyGenerateOptions& gen = c.gen;
  CLI::App* key_generate = key->add_subcommand("generate", "Generate a key inside the token");
  AddKeystoreOptions(key_generate, ks);
  key_generate->add_option("--type", gen.type, "aes256 | hmac-sha256 | ec-p256")->required()
      ->check(CLI::IsMember({"aes256", "hmac-sha256", "ec-p256"}));
  key_generate->add_option("--label", gen.label, "CKA_LABEL")->required();
  key_generate->add_option("--usage", gen.usage, "wrapping | signing | generic (default by type)");
  key_generate->add_option("--id", gen.id_hex, "CKA_ID in hex (default: 8 random bytes)");
  key_generate->callback([&] { action = [&] { return RunKeyGenerate(ks, gen); }; });

  CLI::App* key_list = key->add_subcommand("list", "List key objects: labels, ids, types, attributes (never values)");
  AddKeystoreOptions(key_list, ks, true);
  key_list->callback([&] { action = [&] { return RunKeyList(ks); }; });

  std::string& destroy_key = c.destroy_key;
  CLI::App* key_destroy = key->add_subcommand("destroy", "Destroy (retire) a key");
  AddKeystoreOptions(key_destroy, ks);
  key_destroy->add_option("key", destroy_key, "LABEL, id:HEX, or pkcs11:object=...;id=...")->required();
  key_destroy->callback([&] { action = [&] { return RunKeyDestroy(ks, destroy_key); }; });

  std::string& rotate_type = c.rotate_type;
  CLI::App* key_rotate = key->add_subcommand("rotate", "Generate the next ticket key; it becomes current");
  AddKeystoreOptions(key_rotate, ks);
  key_rotate->add_option("--type", rotate_type, "aes256 | hmac-sha256")->capture_default_str()
      ->check(CLI::IsMember({"aes256", "hmac-sha256"}));
  key_rotate->callback([&] { action = [&] { return RunKeyRotate(ks, rotate_type); }; });

  std::string& export_key = c.export_key;
  std::string& export_wrapping = c.export_wrapping;
  std::string& export_out = c.export_out;
  CLI::App* key_export = key->add_subcommand("export-wrapped", "Write a ticket key wrapped under a trusted wrapping key");
  AddKeystoreOptions(key_export, ks);
  key_export->add_option("key", export_key, "LABEL, id:HEX, or pkcs11: URI of the key")->required();
  key_export->add_option("--wrapping-key", export_wrapping, "The trusted wrapping key")->required();
  key_export->add_option("--out", export_out, "New file for the wrapped key (hex, mode 0600)")->required();
  key_export->callback([&] { action = [&] { return RunKeyExportWrapped(ks, export_key, export_wrapping, export_out); }; });

  KeyImportWrappedOptions& imp = c.imp;
  CLI::App* key_import = key->add_subcommand("import-wrapped", "Unwrap a key exported by another appliance");
  AddKeystoreOptions(key_import, ks);
  key_import->add_option("--in", imp.in_file, "File written by export-wrapped")->required();
  key_import->add_option("--wrapping-key", imp.wrapping_key, "The unwrapping key (same bytes as the exporter's)")->required();
  key_import->add_option("--type", imp.type, "aes256 | hmac-sha256 (default hmac-sha256; tkmsd seals tickets only with hmac-sha256 keys)");
  key_import->add_option("--usage", imp.usage, "ticket (default) | generic");
  key_import->add_option("--label", imp.label, "CKA_LABEL (ticket keys: derived from --id)");
  key_import->add_option("--id", imp.id_hex, "CKA_ID in hex (ticket keys: the 4-byte key id)");
  key_import->callback([&] { action = [&] { return RunKeyImportWrapped(ks, imp); }; });

  WrappingKeyImportOptions& wk = c.wk;
  CLI::App* key_wrapping = key->add_subcommand(
      "import-wrapping-key", "Key ceremony: import a 32-byte AES wrapping key from a hex file (mode 0600)");
  AddKeystoreOptions(key_wrapping, ks);
  key_wrapping->add_option("--label", wk.label, "CKA_LABEL")->required();
  key_wrapping->add_option("--id", wk.id_hex, "CKA_ID in hex");
  key_wrapping->add_option("--value-file", wk.value_file, "Hex file with the key (mode 0600)")->required();
  key_wrapping->add_flag("--trusted", wk.trusted,
                         "Create the CKA_TRUSTED wrap-only key for exporting ticket keys (needs the SO PIN)");
  key_wrapping->add_option("--so-pin-file", wk.so_pin_file, "File with the SO PIN; default $TKMS_SO_PIN");
  key_wrapping->callback([&] { action = [&] { return RunKeyImportWrappingKey(ks, wk); }; });

  CLI::App* user = app.add_subcommand("user", "Manage users and their pre-shared keys");
  user->require_subcommand(1);
  UserAddOptions& add = c.add;
  CLI::App* user_add = user->add_subcommand("add", "Add a user: identities and a PSK kept in the token");
  AddKeystoreOptions(user_add, ks);
  user_add->add_option("--id", add.ids, "Identity URI (repeatable), e.g. sip:alice@example.org")->required();
  auto* psk_out = user_add->add_option("--psk-out", add.psk_out,
                                       "Generate the PSK with the token RNG; write the UE's copy here (hex, 0600)");
  auto* psk_file = user_add->add_option("--psk-file", add.psk_file, "Import the PSK from this hex file (0600)");
  psk_out->excludes(psk_file);
  user_add->callback([&] { action = [&] { return RunUserAdd(ks, add); }; });
  CLI::App* user_list = user->add_subcommand("list", "List users (PSK ids and identities)");
  AddKeystoreOptions(user_list, ks, true);
  user_list->callback([&] { action = [&] { return RunUserList(ks); }; });
  std::string& remove_who = c.remove_who;
  CLI::App* user_remove = user->add_subcommand("remove", "Remove a user and destroy its PSK");
  AddKeystoreOptions(user_remove, ks);
  user_remove->add_option("user", remove_who, "An identity URI of the user, or psk:HEX")->required();
  user_remove->callback([&] { action = [&] { return RunUserRemove(ks, remove_who); }; });

  CLI::App* tls = app.add_subcommand("tls", "The KMS's TLS server key in the token and its certificate request");
  tls->require_subcommand(1);
  CLI::App* tls_key = tls->add_subcommand("key", "Create or show the TLS server key (RSA-2048, never leaves the token)");
  tls_key->require_subcommand(1);
  TlsKeyOptions& tk = c.tls_key;
  const std::string label_help = std::string("CKA_LABEL of the key pair, tkms-tls-... (default ") +
                                 keystore::kDefaultTlsKeyLabel + ")";
  CLI::App* tls_key_create = tls_key->add_subcommand("create", "Generate the key pair in the token; print the public key PEM");
  AddKeystoreOptions(tls_key_create, ks);
  tls_key_create->add_option("--label", tk.label, label_help);
  tls_key_create->callback([&] { action = [&] { return RunTlsKeyCreate(ks, tk); }; });
  CLI::App* tls_key_show = tls_key->add_subcommand("show", "Print the public key PEM of the TLS key");
  AddKeystoreOptions(tls_key_show, ks);
  tls_key_show->add_option("--label", tk.label, label_help);
  tls_key_show->callback([&] { action = [&] { return RunTlsKeyShow(ks, tk); }; });
  TlsCsrOptions& tc = c.tls_csr;
  CLI::App* tls_csr = tls->add_subcommand("csr", "Print a PKCS#10 request (PEM, SHA-256) signed by the TLS key in the token");
  AddKeystoreOptions(tls_csr, ks);
  tls_csr->add_option("--label", tc.label, label_help);
  tls_csr->add_option("--subject", tc.subject, "Subject, e.g. \"CN=kms.example.org,O=Example\"")->required();
  tls_csr->add_option("--dns", tc.dns_names, "subjectAltName dNSName (repeatable)");
  tls_csr->callback([&] { action = [&] { return RunTlsCsr(ks, tc); }; });
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

  KeystoreCli keystore_cli;
  AddKeystoreCommands(app, keystore_cli);
  AddBundleCommands(app, keystore_cli.action);

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

  if (keystore_cli.action) return Emit(keystore_cli.action(), out, err);

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
