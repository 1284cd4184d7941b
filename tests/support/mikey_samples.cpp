#include "tests/support/mikey_samples.h"

#include "firmware/base/byte_writer.h"
#include "firmware/mikey/codec.h"

#include <string_view>

namespace tkms::mikey::samples {
namespace {

Bytes Str(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Deterministic filler: n bytes starting at `seed`, incrementing.
Bytes Fill(size_t n, uint8_t seed) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(seed + i * 7);
  return out;
}

constexpr uint8_t kPrf256 = static_cast<uint8_t>(PrfFunc::kHmacSha256);
constexpr uint8_t kHmac256 = static_cast<uint8_t>(MacAlg::kHmacSha256_256);
constexpr uint64_t kNtpNow = 0xEB3F2A1080000000ull;  // an NTP-UTC timestamp in 2025

CommonHeader Header(DataType dt, bool v, uint32_t csb) {
  CommonHeader h;
  h.data_type = static_cast<uint8_t>(dt);
  h.v = v;
  h.prf_func = kPrf256;
  h.csb_id = csb;
  h.cs_count = 0;
  h.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kEmpty);
  return h;
}

IdrPayload Idr(IdRole role, std::string_view uri) {
  return IdrPayload{static_cast<uint8_t>(role), static_cast<uint8_t>(IdType::kUri), Str(uri)};
}

TPayload Now() { return TPayload{static_cast<uint8_t>(TsType::kNtpUtc), kNtpNow}; }

VPayload V(uint8_t seed) { return VPayload{kHmac256, Fill(32, seed)}; }

TicketPolicy Policy(bool granted, uint16_t flags) {
  TicketPolicy p;
  p.ticket_type = static_cast<uint16_t>(TicketType::kMikeyBase);
  p.subtype = kBaseTicketSubtype;
  p.version = kBaseTicketVersion;
  p.prf_func = kPrf256;
  p.flags = flags;
  p.tp_data.emplace_back(Idr(IdRole::kKms, "kms.example.org"));
  p.tp_data.emplace_back(Idr(IdRole::kInitiator, "sip:alice@example.org"));
  p.tp_data.emplace_back(TrPayload{static_cast<uint8_t>(TsRole::kStart),
                                   static_cast<uint8_t>(TsType::kNtpUtc32), 0xEB3F2A10});
  p.tp_data.emplace_back(TrPayload{static_cast<uint8_t>(TsRole::kEnd),
                                   static_cast<uint8_t>(TsType::kNtpUtc32), 0xEB40A190});
  if (!granted) {
    // Requested keys: one TGK of 16 bytes, key bytes zero (RFC 6043 §6.10).
    KemacPayload request;
    request.encr_alg = static_cast<uint8_t>(EncrAlg::kNull);
    request.mac_alg = static_cast<uint8_t>(MacAlg::kNull);
    request.encr_data = {0x00, 0x01, 0x00, 0x10};  // next 0, TGK (0) / KV SPI (1), len 16
    request.encr_data.resize(4 + 16, 0);
    request.encr_data.push_back(0x00);  // SPI length 0
    p.tp_data.emplace_back(std::move(request));
  }
  p.tp_data.emplace_back(Idr(IdRole::kResponder, "sip:bob@example.org"));
  return p;
}

constexpr uint16_t kPlainFlags = kFlagD | kFlagE | kFlagF | kFlagG | kFlagH | kFlagJ | kFlagN | kFlagO;
constexpr uint16_t kForkFlags = kPlainFlags | kFlagI;

Bytes BaseTicketBytes() {
  BaseTicketData b;
  b.thdr.data = {0x00, 0x01};  // key id 1 (implementation-specific THDR data)
  b.t = Now();
  b.rand.rand = Fill(32, 0x40);
  b.kemac.encr_alg = static_cast<uint8_t>(EncrAlg::kAesCm256);
  b.kemac.encr_data = Fill(4 + 32 + 2 + 16 + 1, 0x90);  // MPK + TGK+SALT sub-payloads, encrypted
  b.kemac.mac_alg = static_cast<uint8_t>(MacAlg::kNull);
  b.idr_psk = IdrPayload{static_cast<uint8_t>(IdRole::kPsk), static_cast<uint8_t>(IdType::kByteString),
                         {0x74, 0x6b, 0x2d, 0x31}};
  b.v = V(0x20);
  auto encoded = EncodeBaseTicketData(b);
  return encoded.ok() ? *encoded : Bytes{};
}

TicketPayload Ticket(uint16_t flags, bool with_initiator_data) {
  TicketPayload t;
  t.policy = Policy(/*granted=*/true, flags);
  t.ticket_data = BaseTicketBytes();
  if (with_initiator_data) t.initiator_data = InitiatorData{V(0x55), V(0x66)};
  return t;
}

GenericIdEntry Cs(uint8_t cs_id, uint32_t ssrc, bool answered) {
  GenericIdEntry e;
  e.cs_id = cs_id;
  e.prot_type = 0;  // SRTP
  e.s_flag = answered;
  e.policies = {1};
  // SRTP Session Data (RFC 3830 §6.1.1): SSRC, then ROC and SEQ once answered.
  ByteWriter data;
  data.U32(ssrc);
  if (answered) {
    data.U32(0).U16(0x1234);
    e.spi = {cs_id};
  }
  e.session_data = data.Take();
  return e;
}

SpPayload SrtpPolicy() {
  SpPayload sp;
  sp.policy_no = 1;
  sp.prot_type = 0;
  sp.params = {{0, {1}}, {1, {16}}, {2, {1}}, {4, {14}}, {7, {1}}, {8, {1}}, {10, {1}}, {11, {10}}};
  return sp;
}

}  // namespace

Message RequestInitPsk() {
  Message m;
  m.header = Header(DataType::kRequestInitPsk, /*v=*/true, 0x1A2B3C4D);
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(RandRole::kInitiator), Fill(16, 0x01)});
  m.payloads.emplace_back(Idr(IdRole::kInitiator, "sip:alice@example.org"));
  m.payloads.emplace_back(Idr(IdRole::kKms, "kms.example.org"));
  m.payloads.emplace_back(TpPayload{Policy(/*granted=*/false, kPlainFlags)});
  m.payloads.emplace_back(IdrPayload{static_cast<uint8_t>(IdRole::kPsk),
                                     static_cast<uint8_t>(IdType::kByteString), Str("alice-psk-1")});
  m.payloads.emplace_back(V(0xA0));
  return m;
}

Message RequestResp() {
  Message m;
  m.header = Header(DataType::kRequestResp, /*v=*/false, 0x1A2B3C4D);
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(Idr(IdRole::kKms, "kms.example.org"));
  m.payloads.emplace_back(Ticket(kPlainFlags, /*with_initiator_data=*/false));
  KemacPayload kemac;
  kemac.encr_alg = static_cast<uint8_t>(EncrAlg::kAesCm256);
  kemac.encr_data = Fill(4 + 32 + 1 + 4 + 16 + 2 + 14 + 2, 0x33);  // MPK, TGK+SALT with SPIs
  kemac.mac_alg = static_cast<uint8_t>(MacAlg::kNull);
  m.payloads.emplace_back(std::move(kemac));
  m.payloads.emplace_back(V(0xB0));
  return m;
}

Message TransferInit() {
  Message m;
  m.header = Header(DataType::kTransferInit, /*v=*/true, 0x55667788);
  m.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kGenericId);
  m.header.generic_map = {Cs(1, 0x11111111, false), Cs(2, 0x22222222, false)};
  m.header.cs_count = 2;
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(RandRole::kInitiator), Fill(16, 0x02)});
  m.payloads.emplace_back(Idr(IdRole::kInitiator, "sip:alice@example.org"));
  m.payloads.emplace_back(Idr(IdRole::kResponder, "sip:bob@example.org"));
  m.payloads.emplace_back(SrtpPolicy());
  m.payloads.emplace_back(Ticket(kPlainFlags, /*with_initiator_data=*/false));
  m.payloads.emplace_back(V(0xC0));
  return m;
}

Message TransferInitForked() {
  Message m = TransferInit();
  m.payloads[5] = Ticket(kForkFlags, /*with_initiator_data=*/true);
  return m;
}

Message TransferResp() {
  Message m;
  m.header = Header(DataType::kTransferResp, /*v=*/false, 0x55667788);
  m.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kGenericId);
  m.header.generic_map = {Cs(1, 0x11111111, true), Cs(2, 0x33333333, true)};
  m.header.cs_count = 2;
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(RandRole::kResponder), Fill(16, 0x03)});
  m.payloads.emplace_back(Idr(IdRole::kResponder, "sip:bob@example.org"));
  m.payloads.emplace_back(V(0xD0));
  return m;
}

Message ResolveInitPsk() {
  Message m;
  m.header = Header(DataType::kResolveInitPsk, /*v=*/true, 0x0BADCAFE);
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(RandRole::kResponder), Fill(16, 0x04)});
  m.payloads.emplace_back(Idr(IdRole::kResponder, "sip:bob@example.org"));
  m.payloads.emplace_back(Idr(IdRole::kKms, "kms.example.org"));
  m.payloads.emplace_back(Ticket(kPlainFlags, /*with_initiator_data=*/false));
  m.payloads.emplace_back(IdrPayload{static_cast<uint8_t>(IdRole::kPsk),
                                     static_cast<uint8_t>(IdType::kByteString), Str("bob-psk-1")});
  m.payloads.emplace_back(V(0xE0));
  return m;
}

Message ResolveResp() {
  Message m;
  m.header = Header(DataType::kResolveResp, /*v=*/false, 0x0BADCAFE);
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(Idr(IdRole::kKms, "kms.example.org"));
  KemacPayload kemac;
  kemac.encr_alg = static_cast<uint8_t>(EncrAlg::kAesCm256);
  kemac.encr_data = Fill(4 + 32 + 1 + 4 + 16 + 2 + 14 + 2, 0x44);
  kemac.mac_alg = static_cast<uint8_t>(MacAlg::kNull);
  m.payloads.emplace_back(std::move(kemac));
  m.payloads.emplace_back(Idr(IdRole::kResponder, "sip:bob@example.org"));
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(RandRole::kKms), Fill(16, 0x05)});
  m.payloads.emplace_back(V(0xF0));
  return m;
}

Message ErrorMessage() {
  Message m;
  m.header = Header(DataType::kError, /*v=*/false, 0x1A2B3C4D);
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(ErrPayload{static_cast<uint8_t>(ErrorNo::kAuthFailure)});
  m.payloads.emplace_back(V(0x10));
  return m;
}

Message PskInitRfc3830() {
  Message m;
  m.header.data_type = static_cast<uint8_t>(DataType::kPskInit);
  m.header.v = true;
  m.header.prf_func = static_cast<uint8_t>(PrfFunc::kMikey1);
  m.header.csb_id = 0xCD177E50;
  m.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kSrtpId);
  m.header.srtp_map = {{1, 0x12345678, 0}, {2, 0x23456789, 1}};
  m.header.cs_count = 2;
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(RandPayload{Fill(16, 0x07)});
  m.payloads.emplace_back(IdPayload{static_cast<uint8_t>(IdType::kUri), Str("sip:alice@example.org")});
  m.payloads.emplace_back(IdPayload{static_cast<uint8_t>(IdType::kUri), Str("sip:bob@example.org")});
  m.payloads.emplace_back(SrtpPolicy());
  KemacPayload kemac;
  kemac.encr_alg = static_cast<uint8_t>(EncrAlg::kAesCm128);
  kemac.encr_data = Fill(4 + 16 + 2 + 14, 0x70);
  kemac.mac_alg = static_cast<uint8_t>(MacAlg::kHmacSha1_160);
  kemac.mac = Fill(20, 0x80);
  m.payloads.emplace_back(std::move(kemac));
  return m;
}

Message PkInitRfc3830() {
  Message m;
  m.header.data_type = static_cast<uint8_t>(DataType::kPkInit);
  m.header.v = true;
  m.header.csb_id = 0x01020304;
  m.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kSrtpId);
  m.header.srtp_map = {{0, 0, 0}};
  m.header.cs_count = 1;
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(RandPayload{Fill(16, 0x08)});
  m.payloads.emplace_back(
      CertPayload{static_cast<uint8_t>(CertType::kX509v3Url), Str("https://pki.example.org/alice.der")});
  m.payloads.emplace_back(IdPayload{static_cast<uint8_t>(IdType::kNai), Str("bob@example.org")});
  KemacPayload kemac;
  kemac.encr_alg = static_cast<uint8_t>(EncrAlg::kAesCm128);
  kemac.encr_data = Fill(40, 0x71);
  kemac.mac_alg = static_cast<uint8_t>(MacAlg::kHmacSha1_160);
  kemac.mac = Fill(20, 0x81);
  m.payloads.emplace_back(std::move(kemac));
  m.payloads.emplace_back(ChashPayload{static_cast<uint8_t>(HashFunc::kSha256), Fill(32, 0x90)});
  m.payloads.emplace_back(PkePayload{1, Fill(128, 0xA0)});
  m.payloads.emplace_back(SignPayload{static_cast<uint8_t>(SignType::kRsaPkcs1), Fill(128, 0xB0)});
  return m;
}

Message DhInitRfc3830() {
  Message m;
  m.header.data_type = static_cast<uint8_t>(DataType::kDhInit);
  m.header.v = true;
  m.header.csb_id = 0x0A0B0C0D;
  m.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kSrtpId);
  m.header.srtp_map = {{0, 0xDEADBEEF, 0}};
  m.header.cs_count = 1;
  m.payloads.emplace_back(TPayload{static_cast<uint8_t>(TsType::kCounter), 42});
  m.payloads.emplace_back(RandPayload{Fill(16, 0x09)});
  m.payloads.emplace_back(IdPayload{static_cast<uint8_t>(IdType::kNai), Str("alice@example.org")});
  DhPayload dh;
  dh.group = static_cast<uint8_t>(DhGroup::kOakley1);
  dh.value = Fill(96, 0xC0);
  dh.kv.kv_type = static_cast<uint8_t>(KvType::kInterval);
  dh.kv.valid_from = Fill(6, 0x00);
  dh.kv.valid_to = Fill(6, 0x10);
  m.payloads.emplace_back(std::move(dh));
  m.payloads.emplace_back(GeneralExtPayload{static_cast<uint8_t>(GeneralExtType::kSdpIds), Str("mikey")});
  m.payloads.emplace_back(SignPayload{static_cast<uint8_t>(SignType::kRsaPss), Fill(96, 0xD0)});
  return m;
}

Message SakkeMessage() {
  Message m;
  m.header.data_type = static_cast<uint8_t>(DataType::kSakke);
  m.header.prf_func = static_cast<uint8_t>(PrfFunc::kMikey1);
  m.header.csb_id = 0x77777777;
  m.header.cs_id_map_type = static_cast<uint8_t>(CsIdMapType::kSrtpId);
  m.header.srtp_map = {{1, 0xABCDEF01, 0}};
  m.header.cs_count = 1;
  m.payloads.emplace_back(Now());
  m.payloads.emplace_back(RandPayload{Fill(16, 0x0A)});
  m.payloads.emplace_back(Idr(IdRole::kInitiator, "tel:+447700900123"));
  m.payloads.emplace_back(Idr(IdRole::kResponder, "tel:+447700900456"));
  m.payloads.emplace_back(Idr(IdRole::kInitiatorKms, "kms.example.org"));
  m.payloads.emplace_back(Idr(IdRole::kResponderKms, "kms.example.net"));
  m.payloads.emplace_back(SakkePayload{1, 1, Fill(273, 0xE0)});
  m.payloads.emplace_back(SignPayload{static_cast<uint8_t>(SignType::kEccsi), Fill(129, 0xF0)});
  return m;
}

std::vector<Sample> All() {
  return {
      {"request_init_psk", RequestInitPsk()},
      {"request_resp", RequestResp()},
      {"transfer_init", TransferInit()},
      {"transfer_init_forked", TransferInitForked()},
      {"transfer_resp", TransferResp()},
      {"resolve_init_psk", ResolveInitPsk()},
      {"resolve_resp", ResolveResp()},
      {"error", ErrorMessage()},
      {"psk_init", PskInitRfc3830()},
      {"pk_init", PkInitRfc3830()},
      {"dh_init", DhInitRfc3830()},
      {"sakke", SakkeMessage()},
  };
}

}  // namespace tkms::mikey::samples
