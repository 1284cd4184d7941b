// fuzz_seed_export: prints the seed inputs that are derived from the sample
// messages (tests/support/mikey_samples.h) through the codec, one per line as
// "<fuzz target> <hex bytes> <kind>", kind being "sample" (taken from a sample
// as is; kept in the corpus whatever the coverage) or "variant" (derived).
// make_seeds.py runs it and files the seeds under tests/fuzz/corpus/<fuzz
// target>/, named by their SHA-1.
//
// Why: the KEMAC plaintexts and base-ticket Ticket Data sit inside encoded
// messages; extracting them with the codec itself is simpler and safer than
// re-implementing a MIKEY walker in the generator script. The seeds it prints:
//   mikey_codec_fuzz       every sample, and structurally valid messages that
//                          break the composition rules (payloads reversed, one
//                          payload per message) for check_composition=false;
//   mikey_keydata_fuzz     every plaintext (NULL-encrypted) KEMAC key-data chain
//                          in the samples, plus chains covering every key type,
//                          KV type and salt;
//   mikey_base_ticket_fuzz the Ticket Data of every base ticket in the samples,
//                          plus variants (no IDRpsk, other MAC, NULL KEMAC).
#include <cstdio>
#include <string>
#include <variant>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "tests/support/mikey_samples.h"

namespace {

using namespace tkms::mikey;  // NOLINT: a small tool over one namespace

enum class Kind { kSample, kVariant };

void Emit(const char* target, std::span<const uint8_t> bytes, Kind kind) {
  std::printf("%s %s %s\n", target, tkms::HexEncode(bytes).c_str(),
              kind == Kind::kSample ? "sample" : "variant");
}

void EmitMessage(const Message& m, Kind kind) {
  auto encoded = Encode(m);
  if (encoded.ok()) Emit("mikey_codec_fuzz", *encoded, kind);
}

void EmitKemacPlaintext(const KemacPayload& k) {
  if (k.encr_alg == static_cast<uint8_t>(EncrAlg::kNull)) {
    Emit("mikey_keydata_fuzz", k.encr_data, Kind::kSample);
  }
}

void EmitPolicy(const TicketPolicy& p) {
  for (const TpDataPayload& d : p.tp_data) {
    if (const auto* k = std::get_if<KemacPayload>(&d)) EmitKemacPlaintext(*k);
  }
}

void EmitTicketData(const Bytes& ticket_data) {
  Emit("mikey_base_ticket_fuzz", ticket_data, Kind::kSample);
  auto base = DecodeBaseTicketData(ticket_data);
  if (!base.ok()) return;
  EmitKemacPlaintext(base->kemac);

  BaseTicketData no_idr = *base;
  no_idr.idr_psk.reset();
  BaseTicketData sha1 = *base;
  sha1.v = VPayload{static_cast<uint8_t>(MacAlg::kHmacSha1_160), Bytes(20, 0x5A)};
  BaseTicketData null_kemac = *base;
  null_kemac.kemac.encr_alg = static_cast<uint8_t>(EncrAlg::kNull);
  null_kemac.kemac.mac_alg = static_cast<uint8_t>(MacAlg::kHmacSha256_256);
  null_kemac.kemac.mac = Bytes(32, 0xA5);
  null_kemac.t = TPayload{static_cast<uint8_t>(TsType::kNtpUtc32), 0xEB3F2A10};
  null_kemac.thdr.data.clear();
  for (const BaseTicketData* v : {&no_idr, &sha1, &null_kemac}) {
    auto encoded = EncodeBaseTicketData(*v);
    if (encoded.ok()) Emit("mikey_base_ticket_fuzz", *encoded, Kind::kVariant);
  }
}

void EmitPayloadContents(const Message& m) {
  for (const Payload& p : m.payloads) {
    if (const auto* k = std::get_if<KemacPayload>(&p)) EmitKemacPlaintext(*k);
    if (const auto* tp = std::get_if<TpPayload>(&p)) EmitPolicy(tp->policy);
    if (const auto* t = std::get_if<TicketPayload>(&p)) {
      EmitPolicy(t->policy);
      if (IsBaseTicket(t->policy)) EmitTicketData(t->ticket_data);
    }
  }
}

// Messages that are well formed payload by payload but do not follow the
// composition rules: they reach the check_composition=false path.
void EmitStructuralVariants(const Message& m) {
  Message reversed = m;
  std::vector<Payload> payloads(m.payloads.rbegin(), m.payloads.rend());
  reversed.payloads = std::move(payloads);
  EmitMessage(reversed, Kind::kVariant);
  for (const Payload& p : m.payloads) {
    Message single;
    single.header = m.header;
    single.payloads.push_back(p);
    EmitMessage(single, Kind::kVariant);
  }
}

KeyDataPayload Key(KeyType type, size_t key_len, KvType kv) {
  KeyDataPayload k;
  k.key_type = static_cast<uint8_t>(type);
  k.key = tkms::SecretBytes(key_len, 0x11);
  if (KeyTypeHasSalt(type)) k.salt = tkms::SecretBytes(14, 0x22);
  k.kv.kv_type = static_cast<uint8_t>(kv);
  if (kv == KvType::kSpi) k.kv.spi = {0x01, 0x02, 0x03, 0x04};
  if (kv == KvType::kInterval) {
    k.kv.valid_from = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    k.kv.valid_to = {0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF};
  }
  return k;
}

void EmitKeyChains() {
  const KeyType types[] = {KeyType::kTgk,  KeyType::kTgkSalt,  KeyType::kTek, KeyType::kTekSalt,
                           KeyType::kGtgk, KeyType::kGtgkSalt, KeyType::kMpk};
  const KvType kvs[] = {KvType::kNull, KvType::kSpi, KvType::kInterval};
  std::vector<std::vector<KeyDataPayload>> chains;
  chains.push_back({});  // no keys at all (RFC 3830 §6.2 update)
  for (KeyType t : types) {
    for (KvType kv : kvs) chains.push_back({Key(t, 16, kv)});
  }
  // What RFC 6043 KEMACs carry: MPK, then TGK+SALT with an SPI.
  chains.push_back({Key(KeyType::kMpk, 32, KvType::kNull), Key(KeyType::kTgkSalt, 16, KvType::kSpi)});
  chains.push_back({Key(KeyType::kTek, 16, KvType::kInterval), Key(KeyType::kTekSalt, 32, KvType::kNull),
                    Key(KeyType::kGtgk, 0, KvType::kSpi)});
  for (const auto& chain : chains) {
    auto encoded = EncodeKeyDataChain(chain);
    if (encoded.ok()) Emit("mikey_keydata_fuzz", *encoded, Kind::kVariant);
  }
}

}  // namespace

int main() {
  for (const samples::Sample& s : samples::All()) {
    EmitMessage(s.message, Kind::kSample);
    EmitPayloadContents(s.message);
    EmitStructuralVariants(s.message);
  }
  EmitKeyChains();
  return 0;
}
