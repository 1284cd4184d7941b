// tkmsctl bundle sign | verify | show | pubkey: see bundle_commands.h.
#include "tools/tkmsctl/bundle_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "firmware/base/encoding.h"
#include "firmware/base/secret_files.h"
#include "firmware/keystore/keystore.h"
#include "firmware/json/bounded_json.h"
#include "firmware/pki/pk.h"
#include "firmware/pki/x509.h"
#include "pkcs11/softhsm_state.h"
#include "pkcs11/uri.h"
#include "provisioning/bundle.h"
#include "tools/tkmsctl/keystore_commands.h"

namespace tkms::tkmsctl {
namespace {

using provisioning::Bytes;

// What `show` pretty-prints of an unverified payload: a configuration's
// limits (provisioning/config.h), but nesting up to 64 levels.
constexpr json::Limits kShownPayloadLimits{provisioning::kMaxConfigBytes, 64, provisioning::kMaxConfigValues,
                                           provisioning::kMaxConfigStringBytes};

CommandOutput Fail(const std::string& message, int code = kExitInvalid) {
  return CommandOutput{code, "", "tkmsctl: " + message + "\n"};
}

// Printable ASCII only: file names and texts from a bundle are not trusted.
std::string Printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte < 0x20 || byte > 0x7e) {
      out += "\\x";
      out += kHex[byte >> 4];
      out += kHex[byte & 0x0f];
    } else {
      out += ch;
    }
  }
  return out;
}

std::string Hex(const std::array<uint8_t, 32>& digest) { return HexEncode(digest); }

Result<std::string> ReadText(const std::string& path, size_t limit) {
  auto bytes = ReadInputFile(path, limit);
  if (!bytes.ok()) return InvalidArgument(bytes.error());
  return std::string(bytes->begin(), bytes->end());
}

Result<Bytes> ReadCertificateFile(const std::string& path) { return pki::LoadCertificateFile(path); }

// ---- files ----

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + Printable(path) + ": " + std::strerror(errno);
}

// Writes `content` to `path` (mode 0644: bundles and public keys are not
// secret) through a temporary file in the same directory, fsync'd, then
// renamed into place: readers see the old file or the new one, never a part.
// Without `replace`, an existing `path` is refused, also if it appears while
// we write (link(2) does not overwrite).
Status WriteFileAtomically(const std::string& path, std::string_view content, bool replace) {
  if (path.empty()) return InvalidArgument("an empty output file name");
  if (!replace && Exists(path)) {
    return FailedPrecondition(Printable(path) + " already exists; refusing to overwrite it (use --force)");
  }
  std::string temp = path + ".tmp-XXXXXX";
  Fd fd(::mkstemp(temp.data()));
  if (fd.get() < 0) return Unavailable(Errno("cannot create a temporary file next to", path));
  struct Cleanup {
    std::string* name;
    ~Cleanup() {
      if (name != nullptr) ::unlink(name->c_str());
    }
  } cleanup{&temp};
  if (::fchmod(fd.get(), 0644) != 0) return Unavailable(Errno("cannot chmod", temp));
  size_t written = 0;
  while (written < content.size()) {
    const ssize_t n = ::write(fd.get(), content.data() + written, content.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Unavailable(Errno("cannot write", temp));
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return Unavailable(Errno("cannot fsync", temp));
  if (::close(fd.release()) != 0) return Unavailable(Errno("cannot close", temp));
  if (replace) {
    if (::rename(temp.c_str(), path.c_str()) != 0) return Unavailable(Errno("cannot rename the temporary file to", path));
  } else {
    if (::link(temp.c_str(), path.c_str()) != 0) {
      if (errno == EEXIST) {
        return FailedPrecondition(Printable(path) + " already exists; refusing to overwrite it (use --force)");
      }
      return Unavailable(Errno("cannot create", path));
    }
    ::unlink(temp.c_str());
  }
  cleanup.name = nullptr;
  // Make the new directory entry durable too (best effort).
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() >= 0) (void)::fsync(dir_fd.get());
  return Status::Ok();
}

// ---- the authority's key ----

struct TokenKey {
  std::string module_path;
  std::string token_spec;  // a token-only pkcs11: URI for Keystore::Open
  pkcs11::KeySelector selector;
  std::optional<std::string> pin_file;
};

// "file:PATH", "file://" + absolute path, or an absolute path.
Result<std::string> PinSourcePath(const std::string& source) {
  std::string path;
  if (source.rfind("file://", 0) == 0) {
    path = source.substr(7);
    if (path.empty() || path.front() != '/') {
      return InvalidArgument("--key: pin-source=file://... needs an absolute path (file:///path/to/pin)");
    }
  } else if (source.rfind("file:", 0) == 0) {
    path = source.substr(5);
  } else if (!source.empty() && source.front() == '/') {
    path = source;
  } else {
    return InvalidArgument("--key: pin-source must name a PIN file (pin-source=file:PATH); nothing else is supported");
  }
  if (path.empty()) return InvalidArgument("--key: pin-source=file: names no file");
  return path;
}

Result<TokenKey> ResolveKey(const BundleKeyOptions& options) {
  auto uri = pkcs11::ParsePkcs11Uri(options.key_uri);
  if (!uri.ok()) return InvalidArgument("--key: " + uri.error().message());
  TokenKey key;
  if (!uri->object && !uri->id) return InvalidArgument("--key: the URI must name the key with object= and/or id=");
  if (uri->type && *uri->type != pkcs11::UriObjectType::kPrivate) {
    return InvalidArgument("--key: the signing key is a private key (type=private or no type)");
  }
  if (!uri->vendor_path.empty()) return InvalidArgument("--key: vendor attributes (x-...) are not supported");
  if (uri->module_name) return InvalidArgument("--key: module-name is not supported; give module-path=PATH");
  key.selector.label = uri->object;
  key.selector.id = uri->id;

  if (uri->module_path && !options.module_path.empty() && *uri->module_path != options.module_path) {
    return InvalidArgument("--key has module-path= and --module names another module; give one");
  }
  key.module_path = uri->module_path ? *uri->module_path
                                     : (options.module_path.empty() ? DefaultModulePath() : options.module_path);
  if (uri->pin_source && options.pin_file) {
    return InvalidArgument("--key has pin-source= and --pin-file is given too; give one");
  }
  if (uri->pin_source) {
    auto path = PinSourcePath(*uri->pin_source);
    if (!path.ok()) return path.error();
    key.pin_file = *path;
  } else {
    key.pin_file = options.pin_file;
  }

  // The token: the URI's token attributes only.
  pkcs11::Pkcs11Uri token = *uri;
  token.object.reset();
  token.id.reset();
  token.type.reset();
  token.pin_source.reset();
  token.module_name.reset();
  token.module_path.reset();
  token.vendor_query.clear();
  if (pkcs11::FormatPkcs11Uri(token) == "pkcs11:") {
    return InvalidArgument("--key: the URI must name the token (token=LABEL, or serial=...)");
  }
  key.token_spec = pkcs11::FormatPkcs11Uri(token);
  return key;
}

Result<std::unique_ptr<keystore::Keystore>> OpenTokenKey(const BundleKeyOptions& options, const TokenKey& key) {
  if (options.state_dir) TKMS_RETURN_IF_ERROR(pkcs11::UseSoftHsmStateDir(*options.state_dir, /*must_exist=*/true));
  auto pin = ReadPin(key.pin_file, kPinEnv, "PIN");
  if (!pin.ok()) return pin.error();
  keystore::KeystoreOptions keystore_options;
  keystore_options.module_path = key.module_path;
  keystore_options.token = key.token_spec;
  keystore_options.pin = std::move(*pin);
  keystore_options.sessions = 1;
  keystore_options.session_copies = false;  // only the one EC key is used
  auto keystore = keystore::Keystore::Open(keystore_options);
  if (!keystore.ok()) {
    return Status(keystore.error().code(),
                  "cannot open token " + Printable(key.token_spec) + ": " + keystore.error().message());
  }
  return keystore;
}

// ---- show ----

std::string DescribeCertificates(const std::vector<Bytes>& certificates) {
  std::string out;
  for (size_t i = 0; i < certificates.size(); ++i) {
    out += "  [" + std::to_string(i) + "] ";
    auto c = pki::DescribeCertificate(certificates[i]);
    if (!c.ok()) {
      out += "cannot be read: " + c.error().message() + "\n";
      continue;
    }
    out += (i == 0 ? "signer  " : "issuer  ") + c->subject + "\n";
    out += "      issued by   " + c->issuer + "\n";
    out += "      serial      " + c->serial_hex + "\n";
    out += "      valid       " + pki::FormatUtcTime(c->not_before) + " .. " + pki::FormatUtcTime(c->not_after) +
           "\n";
    out += "      key         " + c->key + (c->is_ca ? ", CA" : "") + ", key usage " + c->key_usage + "\n";
  }
  return out;
}

std::string Verb(bool force) { return force ? "replaced" : "wrote"; }

}  // namespace

std::optional<std::time_t> ParseUtcTime(const std::string& text) {
  if (!text.empty() && text.size() <= 12 && text.find_first_not_of("0123456789") == std::string::npos) {
    return static_cast<std::time_t>(std::stoll(text));
  }
  std::tm tm{};
  char tail = 0;
  if (text.size() != 20 || std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                                       &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &tail) != 7 ||
      tail != 'Z') {
    return std::nullopt;
  }
  const std::string canonical = text;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const std::time_t t = ::timegm(&tm);
  if (pki::FormatUtcTime(t) != canonical) return std::nullopt;  // 2030-02-30 and the like
  return t;
}

CommandOutput RunBundleSign(const BundleSignOptions& options) {
  auto key = ResolveKey(options.key);
  if (!key.ok()) return Fail(key.error().message(), kExitUsage);
  auto payload = ReadText(options.in_file, provisioning::kMaxConfigBytes);
  if (!payload.ok()) return Fail(payload.error().message());
  // A bad configuration is refused before the token is touched.
  if (auto config = provisioning::ParseConfig(*payload, provisioning::ConfigRole::kBundle); !config.ok()) {
    return Fail("refusing to sign " + Printable(options.in_file) + ": payload: " + config.error().message());
  }
  std::vector<Bytes> chain;
  auto signer = ReadCertificateFile(options.cert_file);
  if (!signer.ok()) return Fail("--cert " + signer.error().message());
  chain.push_back(std::move(*signer));
  for (const std::string& file : options.chain_files) {
    auto cert = ReadCertificateFile(file);
    if (!cert.ok()) return Fail("--chain " + cert.error().message());
    chain.push_back(std::move(*cert));
  }
  if (!options.force && Exists(options.out_file)) {
    return Fail(Printable(options.out_file) + " already exists; refusing to overwrite it (use --force)");
  }

  auto keystore = OpenTokenKey(options.key, *key);
  if (!keystore.ok()) return Fail(keystore.error().message());
  keystore::Keystore& token = **keystore;
  const pkcs11::KeySelector selector = key->selector;
  auto text = provisioning::SignBundle(
      *payload, [&](ByteSpan digest) { return token.SignEcdsaP256(selector, digest); }, std::move(chain));
  if (!text.ok()) return Fail("cannot sign " + Printable(options.in_file) + ": " + text.error().message());
  if (Status s = WriteFileAtomically(options.out_file, *text, options.force); !s.ok()) return Fail(s.message());

  auto bundle = provisioning::ParseBundle(*text);
  auto cert = pki::DescribeCertificate(bundle->certificates[0]);
  auto config = provisioning::ParseConfig(*payload, provisioning::ConfigRole::kBundle);
  std::string out = Verb(options.force) + " " + Printable(options.out_file) + ": bundle version " +
                    std::to_string(config.ok() ? config->version : 0) + ", " + std::to_string(payload->size()) +
                    " payload bytes, signed with " + selector.ToString() + " of token " +
                    Printable(key->token_spec) + "\n";
  if (cert.ok()) out += "signer: " + cert->subject + " (serial " + cert->serial_hex + ")\n";
  out += "sha256: " + Hex(provisioning::BundleFileDigest(*text)) + "\n";
  return CommandOutput{kExitOk, out, ""};
}

CommandOutput RunBundleVerify(const BundleVerifyOptions& options) {
  auto anchor = ReadCertificateFile(options.anchor_file);
  if (!anchor.ok()) return Fail("--anchor " + anchor.error().message());
  auto text = ReadText(options.bundle_file, provisioning::kMaxBundleBytes);
  if (!text.ok()) return Fail(text.error().message());
  const std::time_t now = options.at.value_or(std::time(nullptr));
  auto verified = provisioning::VerifyBundle(*text, *anchor, now);
  if (!verified.ok()) {
    return Fail(Printable(options.bundle_file) + ": REFUSED: " + verified.error().message());
  }
  auto anchor_info = pki::DescribeCertificate(*anchor);
  std::string out = Printable(options.bundle_file) + ": VALID\n";
  out += "version:  " + std::to_string(verified->version) + "\n";
  out += "signer:   " + verified->signer.subject + " (serial " + verified->signer.serial_hex + ", valid until " +
         pki::FormatUtcTime(verified->signer.not_after) + ")\n";
  out += "issuer:   " + verified->signer.issuer + "\n";
  if (anchor_info.ok()) out += "anchor:   " + anchor_info->subject + " (serial " + anchor_info->serial_hex + ")\n";
  out += "checked:  at " + pki::FormatUtcTime(now) + "\n";
  out += "sha256:   " + Hex(verified->file_digest) + "\n";
  return CommandOutput{kExitOk, out, ""};
}

CommandOutput RunBundleShow(const std::string& bundle_file) {
  auto text = ReadText(bundle_file, provisioning::kMaxBundleBytes);
  if (!text.ok()) return Fail(text.error().message());
  auto bundle = provisioning::ParseBundle(*text);
  if (!bundle.ok()) return Fail(Printable(bundle_file) + ": " + bundle.error().message());
  std::string out = Printable(bundle_file) + ": NOT VERIFIED (what the bundle says about itself; check it with "
                                             "'tkmsctl bundle verify --anchor FILE')\n";
  out += "format:       " + std::string(provisioning::kBundleFormat) + "\n";
  out += "sha256:       " + Hex(provisioning::BundleFileDigest(*text)) + "\n";
  out += "signature:    " + std::to_string(bundle->signature.size()) + " bytes (DER ECDSA P-256 over SHA-256)\n";
  out += "certificates: " + std::to_string(bundle->certificates.size()) + "\n";
  out += DescribeCertificates(bundle->certificates);
  const std::string& payload = bundle->payload;
  out += "payload:      " + std::to_string(payload.size()) + " bytes, payload digest " +
         Hex(provisioning::BundleMessageDigest(payload)) + " (signed message)\n";
  // Key order kept: the members in the order the authority wrote them.
  auto doc = json::ParseOrdered(payload, kShownPayloadLimits);
  if (!doc.ok()) {
    out += "version:      (the payload is not JSON within the configuration limits: " + doc.error().ToString() +
           ")\n--- payload (as text) ---\n" + Printable(payload) + "\n";
    return CommandOutput{kExitOk, out, ""};
  }
  const auto version = doc->is_object() ? doc->find("version") : doc->end();
  if (doc->is_object() && version != doc->end() && version->is_number_unsigned()) {
    out += "version:      " + std::to_string(version->get<uint64_t>()) + "\n";
  } else {
    out += "version:      (none)\n";
  }
  out += "--- payload ---\n" +
         doc->dump(2, ' ', /*ensure_ascii=*/true, nlohmann::ordered_json::error_handler_t::replace) + "\n";
  return CommandOutput{kExitOk, out, ""};
}

CommandOutput RunBundlePubkey(const BundlePubkeyOptions& options) {
  auto key = ResolveKey(options.key);
  if (!key.ok()) return Fail(key.error().message(), kExitUsage);
  if (!options.force && Exists(options.out_file)) {
    return Fail(Printable(options.out_file) + " already exists; refusing to overwrite it (use --force)");
  }
  auto keystore = OpenTokenKey(options.key, *key);
  if (!keystore.ok()) return Fail(keystore.error().message());
  auto point = (*keystore)->PublicKeyEcPoint(key->selector);
  if (!point.ok()) return Fail("cannot read the public key of " + key->selector.ToString() + ": " + point.error().message());
  auto public_key = pki::PkContext::EcP256PublicKey(*point);
  if (!public_key.ok()) return Fail(key->selector.ToString() + ": " + public_key.error().message());
  auto pem = public_key->PublicKeyPem();
  if (!pem.ok()) return Fail(key->selector.ToString() + ": " + pem.error().message());
  if (Status s = WriteFileAtomically(options.out_file, *pem, options.force); !s.ok()) return Fail(s.message());
  return CommandOutput{kExitOk,
                       Verb(options.force) + " " + Printable(options.out_file) + ": the EC P-256 public key of " +
                           key->selector.ToString() + " (PEM SubjectPublicKeyInfo)\n",
                       ""};
}

void AddBundleCommands(CLI::App& app, std::function<CommandOutput()>& action) {
  struct State {
    BundleSignOptions sign;
    BundleVerifyOptions verify;
    std::string at;
    std::string show_file;
    BundlePubkeyOptions pubkey;
  };
  auto state = std::make_shared<State>();

  CLI::App* bundle = app.add_subcommand("bundle", "Sign, verify and inspect signed configuration bundles");
  bundle->require_subcommand(1);

  auto add_key_options = [](CLI::App* cmd, BundleKeyOptions& key) {
    cmd->add_option("--key", key.key_uri,
                    "The EC P-256 private key: pkcs11:token=LABEL;object=LABEL[;id=%01..][?pin-source=file:PATH"
                    "&module-path=PATH]")
        ->required();
    cmd->add_option("--state-dir", key.state_dir,
                    "SoftHSM2 state directory made by 'token init --state-dir' (uses DIR/softhsm2.conf)");
    cmd->add_option("--module", key.module_path,
                    "PKCS#11 module, unless the URI has module-path= (default $TKMS_PKCS11_MODULE or " +
                        DefaultModulePath() + ")");
    cmd->add_option("--pin-file", key.pin_file,
                    "File with the user PIN (mode 0600), unless the URI has pin-source=; default $TKMS_PIN");
  };

  CLI::App* sign = bundle->add_subcommand("sign", "Sign a configuration into a bundle with a key kept in a token");
  add_key_options(sign, state->sign.key);
  sign->add_option("--cert", state->sign.cert_file, "The signer's certificate for that key (PEM or DER)")
      ->required();
  sign->add_option("--chain", state->sign.chain_files,
                   "An intermediate CA certificate (PEM or DER); repeat, signer's issuer first")
      ->allow_extra_args(false);
  sign->add_option("--in", state->sign.in_file, "The configuration (JSON, role bundle: docs/config.md), or -")
      ->required();
  sign->add_option("--out", state->sign.out_file, "The bundle file to write")->required();
  sign->add_flag("--force", state->sign.force, "Replace --out if it exists");
  sign->callback([state, &action] { action = [state] { return RunBundleSign(state->sign); }; });

  CLI::App* verify = bundle->add_subcommand("verify", "Verify a bundle against a provisioning anchor; exit 0 only if valid");
  verify->add_option("--anchor", state->verify.anchor_file, "The provisioning anchor (CA certificate, PEM or DER)")
      ->required();
  verify->add_option("--at", state->at, "Verify as of this UTC time (2030-01-01T00:00:00Z) instead of now");
  verify->add_option("bundle", state->verify.bundle_file, "The bundle file, or -")->required();
  verify->callback([state, &action] {
    action = [state]() -> CommandOutput {
      if (!state->at.empty()) {
        state->verify.at = ParseUtcTime(state->at);
        if (!state->verify.at) return Fail("--at: expected YYYY-MM-DDTHH:MM:SSZ (UTC) or epoch seconds", kExitUsage);
      }
      return RunBundleVerify(state->verify);
    };
  });

  CLI::App* show = bundle->add_subcommand("show", "Print what a bundle says about itself, without verifying it");
  show->add_option("bundle", state->show_file, "The bundle file, or -")->required();
  show->callback([state, &action] { action = [state] { return RunBundleShow(state->show_file); }; });

  CLI::App* pubkey = bundle->add_subcommand(
      "pubkey", "Write the public key of a token's EC P-256 key as PEM, to have its certificate issued");
  add_key_options(pubkey, state->pubkey.key);
  pubkey->add_option("--out", state->pubkey.out_file, "The PEM file to write")->required();
  pubkey->add_flag("--force", state->pubkey.force, "Replace --out if it exists");
  pubkey->callback([state, &action] { action = [state] { return RunBundlePubkey(state->pubkey); }; });
}

}  // namespace tkms::tkmsctl
