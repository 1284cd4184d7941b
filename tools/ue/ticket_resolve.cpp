// The UE's Ticket Transfer initial message and Ticket Resolve exchange
// (RFC 6043 §4.2.2.1, §4.2.3, §5.1.2, §5.5): BuildTransferInit,
// BuildResolveInitPsk, ParseResolveResp and the Responder's VerifyTransferInit
// (§4.2.3.6); see ticket_client.h, readings 1-9.
#include <algorithm>
#include <string>
#include <utility>

#include "firmware/mikey/coverage.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/mac.h"
#include "firmware/mikey/crypto/protect.h"
#include "tools/ue/ticket_client.h"
#include "tools/ue/transfer.h"
#include "tools/ue/ue_internal.h"

namespace tkms::ue {

using mikey::DataType;
using mikey::IdrPayload;
using mikey::Message;
using mikey::RandrPayload;
using mikey::TicketPayload;
using mikey::TPayload;
using mikey::VPayload;
namespace crypto = mikey::crypto;
using namespace internal;  // NOLINT: the file's building blocks

namespace {

// RFC 6043 §5.5 with the I flag: the TICKET's Initiator Data gets Vi (the V
// payload of `m`, already sealed) and Vr, keyed from the unforked MPKr with
// the ticket policy's PRF (reading 9); the message is encoded again.
UeResult<Bytes> AddInitiatorData(crypto::CryptoProvider& provider, const TicketGrant& grant, uint8_t mac_alg,
                                 Message& m, size_t ticket_index) {
  mikey::InitiatorData data;
  data.vi = std::get<VPayload>(m.payloads.back());
  data.vr = VPayload{mac_alg, {}};
  auto input = mikey::InitiatorDataMacInput(data);
  if (!input.ok()) return Invalid("Initiator Data: " + input.error().ToString());
  auto mpkr = Import(provider, *grant.mpkr);
  if (!mpkr.ok()) return std::move(mpkr).error();
  auto vr_key = crypto::DeriveInitiatorDataAuthKey(
      provider, static_cast<mikey::PrfFunc>(grant.ticket.policy.prf_func), **mpkr,
      static_cast<mikey::MacAlg>(mac_alg));
  if (!vr_key.ok()) return FromStatus(vr_key.error());
  auto vr_auth = Import(provider, *vr_key);
  if (!vr_auth.ok()) return std::move(vr_auth).error();
  const ByteSpan parts[] = {*input};
  auto vr_mac = crypto::ComputeMac(provider, static_cast<mikey::MacAlg>(mac_alg), **vr_auth, parts);
  if (!vr_mac.ok()) return FromStatus(vr_mac.error());
  data.vr.mac = std::move(*vr_mac);
  std::get<TicketPayload>(m.payloads[ticket_index]).initiator_data = std::move(data);
  auto encoded = mikey::Encode(m);
  if (!encoded.ok()) return Invalid("TRANSFER_INIT: " + encoded.error().ToString());
  return std::move(*encoded);
}

}  // namespace

// ---- Ticket Transfer -------------------------------------------------------------------

UeResult<TransferInit> BuildTransferInit(crypto::CryptoProvider& provider, const TicketGrant& grant,
                                         const TransferInitParams& params) {
  if (auto ok = CheckAlgorithms(params.prf_func, params.mac_alg); !ok.ok()) return std::move(ok).error();
  if (grant.mpki.empty()) return Invalid("the grant has no MPKi");
  const uint16_t flags = grant.ticket.policy.flags;
  const bool forking = (flags & mikey::kFlagI) != 0;
  if (forking && (!grant.mpkr.has_value() || grant.mpkr->empty())) {
    return Invalid("the ticket uses key forking (I flag) but the grant has no MPKr");
  }
  // Reading 4 / transfer.h reading 18: RANDRi is used with MPKi, MPKr(') and
  // the session keys, and must cover the longest alone (a RANDRr may not come).
  const size_t longest = LongestTransferKey(grant);
  auto opening = OpenMessage(provider, params.csb_id, params.timestamp, params.randri, longest, longest, "RANDRi");
  if (!opening.ok()) return std::move(opening).error();
  const uint32_t csb_id = opening->csb_id;
  const TPayload* t = &opening->t;
  Bytes* randri = &opening->rand;

  TransferInit out;
  Message& m = out.message;
  // RFC 6043 §4.2.2.1: new CSB ID, V flag = the F flag of the ticket policy.
  m.header = TicketHeader(DataType::kTransferInit, (flags & mikey::kFlagF) != 0, params.prf_func, csb_id);
  if (params.generic_id_map) {
    auto ssrc = RandomBytes(provider, 4);
    if (!ssrc.ok()) return std::move(ssrc).error();
    mikey::GenericIdEntry cs;
    cs.cs_id = 1;
    cs.prot_type = 0;  // SRTP
    cs.s_flag = false;
    cs.session_data = std::move(*ssrc);  // SSRC only (S = 0); #P = 0: the Responder chooses
    m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kGenericId);
    m.header.generic_map.push_back(std::move(cs));
    m.header.cs_count = 1;
  }
  m.payloads.emplace_back(*t);
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kInitiator), *randri});
  if (params.initiator.send) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kInitiator, params.initiator.id_type, params.initiator.id));
  }
  if (params.responder.send) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kResponder, params.responder.id_type, params.responder.id));
  }
  TicketPayload ticket = grant.ticket;
  const size_t mac_len = mikey::MacLength(static_cast<mikey::MacAlg>(params.mac_alg));
  if (forking) {
    // Placeholders: the V MAC does not cover Initiator Data (RFC 6043 §5.5).
    ticket.initiator_data = mikey::InitiatorData{VPayload{params.mac_alg, Bytes(mac_len, 0)},
                                                 VPayload{params.mac_alg, Bytes(mac_len, 0)}};
  } else {
    ticket.initiator_data.reset();
  }
  const size_t ticket_index = m.payloads.size();
  m.payloads.emplace_back(ticket);
  m.payloads.emplace_back(VPayload{params.mac_alg, {}});

  // RFC 6043 §5.1.2: MPKi, 0x01, RANDRi, no RANDRr.
  auto keys = MessageKeysFrom(provider, grant.mpki, params.prf_func, crypto::Direction::kInitial, csb_id,
                              ByteSpan(*randri), std::nullopt,
                              static_cast<uint8_t>(mikey::EncrAlg::kNull), params.mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  // RFC 6043 §5.5: TRANSFER_INIT (without Initiator Data) || Identity_i || Identity_r.
  const ByteSpan ids[] = {params.initiator.id, params.responder.id};
  auto sealed = Seal(provider, m, keys->auth_key, ids);
  if (!sealed.ok()) return std::move(sealed).error();

  if (forking) {
    // Initiator Data = Vi (the V payload just computed), Vr keyed from MPKr.
    auto with_data = AddInitiatorData(provider, grant, params.mac_alg, m, ticket_index);
    if (!with_data.ok()) return std::move(with_data).error();
    out.bytes = std::move(*with_data);
  } else {
    out.bytes = std::move(*sealed);
  }
  out.ticket = std::get<TicketPayload>(m.payloads[ticket_index]);
  out.csb_id = csb_id;
  out.randri = std::move(*randri);
  return out;
}

// ---- Ticket Resolve --------------------------------------------------------------------

UeResult<ResolveInit> BuildResolveInitPsk(crypto::CryptoProvider& provider,
                                          const ResolveInitParams& params) {
  if (params.psk.empty()) return Invalid("the PSK is empty");
  if (auto ok = CheckAlgorithms(params.prf_func, params.mac_alg); !ok.ok()) return std::move(ok).error();
  // Reading 4: RANDRr is used with the PSK.
  auto opening = OpenMessage(provider, params.csb_id, params.timestamp, params.randrr, params.psk.size(),
                             params.psk.size(), "RANDRr");
  if (!opening.ok()) return std::move(opening).error();
  const uint32_t csb_id = opening->csb_id;
  const TPayload* t = &opening->t;
  auto ts64 = Ts64(*t);
  if (!ts64.ok()) return std::move(ts64).error();
  Bytes* randrr = &opening->rand;

  ResolveInit out;
  Message& m = out.message;
  // RFC 6043 §4.2.3.1: V = 1, #CS = 0, Empty map.
  m.header = TicketHeader(DataType::kResolveInitPsk, /*v=*/true, params.prf_func, csb_id);
  m.payloads.emplace_back(*t);
  m.payloads.emplace_back(RandrPayload{static_cast<uint8_t>(mikey::RandRole::kResponder), *randrr});
  if (params.responder.send) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kResponder, params.responder.id_type, params.responder.id));
  }
  if (params.kms.send) m.payloads.emplace_back(Idr(mikey::IdRole::kKms, params.kms.id_type, params.kms.id));
  m.payloads.emplace_back(params.ticket);
  if (params.psk_id) {
    m.payloads.emplace_back(Idr(mikey::IdRole::kPsk, static_cast<uint8_t>(mikey::IdType::kByteString),
                                *params.psk_id));
  }
  m.payloads.emplace_back(VPayload{params.mac_alg, {}});

  // RFC 6043 §5.1.2 (reading 2): PSK, 0x01, no RANDRi, RANDRr.
  auto keys = MessageKeysFrom(provider, params.psk, params.prf_func, crypto::Direction::kInitial, csb_id,
                              std::nullopt, ByteSpan(*randrr),
                              static_cast<uint8_t>(mikey::EncrAlg::kNull), params.mac_alg);
  if (!keys.ok()) return std::move(keys).error();
  // RFC 6043 §5.5: RESOLVE_INIT || Identity_r || Identity_kms.
  const ByteSpan ids[] = {params.responder.id, params.kms.id};
  auto sealed = Seal(provider, m, keys->auth_key, ids);
  if (!sealed.ok()) return std::move(sealed).error();

  out.bytes = std::move(*sealed);
  out.psk = params.psk;
  out.auth_key = std::move(keys->auth_key);
  out.mac_alg = params.mac_alg;
  out.prf_func = params.prf_func;
  out.csb_id = csb_id;
  out.randrr = std::move(*randrr);
  out.responder_identity = params.responder.id;
  out.kms_identity = params.kms.id;
  out.ts64 = *ts64;
  out.forking = (params.ticket.policy.flags & mikey::kFlagI) != 0;
  out.checks = params.checks;
  return out;
}

UeResult<ResolvedTicket> ParseResolveResp(crypto::CryptoProvider& provider, ByteSpan response,
                                          const ResolveInit& request) {
  ResponseContext ctx{DataType::kResolveResp,
                      request.bytes,
                      &request.message.header,
                      &request.psk,
                      std::nullopt,
                      ByteSpan(request.randrr),
                      &request.kms_identity,
                      request.ts64,
                      &request.checks,
                      ErrorAuthKey{&request.auth_key, request.mac_alg}};
  auto opened = OpenResponse(provider, response, ctx);
  if (!opened.ok()) return std::move(opened).error();
  Message& m = opened->message;
  ResolvedTicket out;
  const IdrPayload* idrr = FindIdr(m, mikey::IdRole::kResponder);
  const RandrPayload* randrkms = FindRandr(m, mikey::RandRole::kKms);
  if (request.forking && (idrr == nullptr || randrkms == nullptr)) {
    return Verification("the ticket uses key forking but RESOLVE_RESP lacks IDRr or RANDRkms "
                        "(RFC 6043 §4.2.3.5: the modifier SHALL be included)");
  }
  auto split = SplitKeys(opened->keys, request.forking ? 2 : 1, request.checks.require_key_spi,
                         out.mpk_keys, out.session_keys);
  if (!split.ok()) return std::move(split).error();
  out.mpki = out.mpk_keys[0].key;
  if (request.forking) out.mpkr_forked = out.mpk_keys[1].key;
  if (idrr != nullptr) out.responder = *idrr;
  if (randrkms != nullptr) out.randrkms = randrkms->rand;
  out.kms_timestamp = std::get<TPayload>(m.payloads.front());
  if (const IdrPayload* kms = FindIdr(m, mikey::IdRole::kKms)) out.kms_identity = kms->data;
  out.response.assign(response.begin(), response.end());
  return out;
}

Result<void, UeError> VerifyTransferInit(crypto::CryptoProvider& provider, ByteSpan transfer_init,
                                         const ResolvedTicket& resolved,
                                         const std::optional<Bytes>& identity_i,
                                         const std::optional<Bytes>& identity_r) {
  // transfer.h reading 17: no SRTP-ID (or undefined) CS ID map.
  if (auto map = CheckTransferMapTypeBytes(transfer_init, DataType::kTransferInit); !map.ok()) {
    return std::move(map).error();
  }
  std::vector<mikey::PayloadExtent> extents;
  auto decoded = mikey::Decode(transfer_init, {}, extents);
  if (!decoded.ok()) return Undecodable("TRANSFER_INIT", decoded.error());
  const Message& m = *decoded;
  if (m.header.data_type != static_cast<uint8_t>(DataType::kTransferInit)) {
    return Verification("expected TRANSFER_INIT, received " + Name(m.header.data_type));
  }
  if (auto map = CheckTransferMapType(m.header.cs_id_map_type, "TRANSFER_INIT"); !map.ok()) {
    return std::move(map).error();
  }
  const RandrPayload* randri = FindRandr(m, mikey::RandRole::kInitiator);
  const TicketPayload* ticket = Find<TicketPayload>(m);
  const auto* v = std::get_if<VPayload>(&m.payloads.back());
  if (randri == nullptr || ticket == nullptr || v == nullptr) {
    return Verification("TRANSFER_INIT lacks RANDRi, TICKET or V (a CSB update?)");
  }
  if (v->auth_alg == static_cast<uint8_t>(mikey::MacAlg::kNull)) return Verification("V uses the NULL MAC");
  Bytes id_i, id_r;
  if (identity_i) id_i = *identity_i;
  else if (const IdrPayload* p = FindIdr(m, mikey::IdRole::kInitiator)) id_i = p->data;
  if (identity_r) id_r = *identity_r;
  else if (const IdrPayload* p = FindIdr(m, mikey::IdRole::kResponder)) id_r = p->data;
  auto keys = MessageKeysFrom(provider, resolved.mpki, m.header.prf_func, crypto::Direction::kInitial,
                              m.header.csb_id, ByteSpan(randri->rand), std::nullopt,
                              static_cast<uint8_t>(mikey::EncrAlg::kNull), v->auth_alg);
  if (!keys.ok()) return std::move(keys).error();
  auto auth = Import(provider, keys->auth_key);
  if (!auth.ok()) return std::move(auth).error();
  const ByteSpan ids[] = {id_i, id_r};
  Status verified = crypto::VerifyV(provider, transfer_init, m, extents, **auth, ids);
  if (!verified.ok()) return Verification("TRANSFER_INIT: V does not verify with MPKi (" + verified.message() + ")");
  if ((ticket->policy.flags & mikey::kFlagI) != 0) {
    // RFC 6043 §4.2.3.6: the V MAC must be identical to Vi's MAC.
    if (!ticket->initiator_data || ticket->initiator_data->vi.auth_alg != v->auth_alg ||
        !ConstantTimeEquals(ticket->initiator_data->vi.mac, v->mac)) {
      return Verification("TRANSFER_INIT: the V MAC differs from Vi in the Initiator Data");
    }
  }
  return {};
}

}  // namespace tkms::ue
