// The Responder's early check of a TRANSFER_INIT's ticket policy
// (RFC 6043 §4.2.2.2), one case per rejection plus the accepted one.
#include <gtest/gtest.h>

#include "tools/ue/transfer.h"

namespace tkms::ue {
namespace {

using mikey::Bytes;

constexpr uint64_t kNow = uint64_t{3990000000} << 32;  // an NTP-UTC time in 2026

Bytes B(std::string_view s) { return Bytes(s.begin(), s.end()); }

mikey::Message TransferInitWith(uint16_t flags, std::vector<mikey::TpDataPayload> tp_data, bool initiator_data) {
  mikey::TicketPayload ticket;
  ticket.policy.ticket_type = 1;
  ticket.policy.subtype = 1;
  ticket.policy.version = 1;
  ticket.policy.flags = flags;
  ticket.policy.tp_data = std::move(tp_data);
  ticket.ticket_data = {1, 2, 3};
  if (initiator_data) ticket.initiator_data = mikey::InitiatorData{};
  mikey::Message m;
  m.header.data_type = static_cast<uint8_t>(mikey::DataType::kTransferInit);
  m.payloads.emplace_back(std::move(ticket));
  return m;
}

mikey::IdrPayload Responder(std::string_view id) {
  return mikey::IdrPayload{static_cast<uint8_t>(mikey::IdRole::kResponder),
                           static_cast<uint8_t>(mikey::IdType::kUri), B(id)};
}

mikey::TrPayload Tr(mikey::TsRole role, uint64_t value) {
  return mikey::TrPayload{static_cast<uint8_t>(role), static_cast<uint8_t>(mikey::TsType::kNtpUtc), value};
}

constexpr uint16_t kFlags = mikey::kFlagD | mikey::kFlagE | mikey::kFlagF | mikey::kFlagG | mikey::kFlagH |
                            mikey::kFlagN | mikey::kFlagO;

std::string Reason(const mikey::Message& m, const std::vector<Bytes>& ids) {
  auto r = CheckTransferInitEarly(m, ids, kNow);
  return r.ok() ? std::string("accepted") : r.error().detail;
}

TEST(UeEarlyCheck, AcceptsAListedResponderWithinValidity) {
  auto m = TransferInitWith(kFlags, {Tr(mikey::TsRole::kStart, kNow - (60ull << 32)),
                                     Tr(mikey::TsRole::kEnd, kNow + (60ull << 32)), Responder("sip:bob@example.org")},
                            false);
  EXPECT_EQ(Reason(m, {B("sip:bob@example.org")}), "accepted");
  // Called as a group identity: accepted when that identity is acceptable.
  auto group = TransferInitWith(kFlags, {Responder("sip:team@example.org")}, false);
  EXPECT_EQ(Reason(group, {B("sip:bob@example.org"), B("sip:team@example.org")}), "accepted");
}

TEST(UeEarlyCheck, RejectsEachCondition) {
  const std::vector<Bytes> bob{B("sip:bob@example.org")};
  EXPECT_NE(Reason(TransferInitWith(kFlags & ~uint16_t{mikey::kFlagO}, {Responder("sip:bob@example.org")}, false), bob)
                .find("O flag"),
            std::string::npos);
  EXPECT_NE(Reason(TransferInitWith(kFlags, {Tr(mikey::TsRole::kEnd, kNow - 1), Responder("sip:bob@example.org")}, false),
                   bob)
                .find("expired"),
            std::string::npos);
  EXPECT_NE(Reason(TransferInitWith(kFlags, {Tr(mikey::TsRole::kStart, kNow + (10ull << 32)),
                                             Responder("sip:bob@example.org")},
                                    false),
                   bob)
                .find("not valid yet"),
            std::string::npos);
  EXPECT_NE(Reason(TransferInitWith(kFlags, {Responder("sip:carol@example.org")}, false), bob).find("IDRr"),
            std::string::npos);
  EXPECT_NE(Reason(TransferInitWith(kFlags | mikey::kFlagI, {Responder("sip:bob@example.org")}, false), bob)
                .find("Initiator Data"),
            std::string::npos);
  EXPECT_EQ(Reason(TransferInitWith(kFlags | mikey::kFlagI, {Responder("sip:bob@example.org")}, true), bob),
            "accepted");
  mikey::Message no_ticket;
  EXPECT_NE(Reason(no_ticket, bob).find("no TICKET"), std::string::npos);
}

TEST(UeEarlyCheck, RejectsTheSrtpIdMapAndUndefinedMapTypes) {
  const std::vector<Bytes> bob{B("sip:bob@example.org")};
  auto m = TransferInitWith(kFlags, {Responder("sip:bob@example.org")}, false);
  m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kGenericId);
  EXPECT_EQ(Reason(m, bob), "accepted");
  m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kEmpty);
  EXPECT_EQ(Reason(m, bob), "accepted");
  // RFC 6043 §6.1: "The map type SRTP-ID SHALL NOT be used."
  m.header.cs_id_map_type = static_cast<uint8_t>(mikey::CsIdMapType::kSrtpId);
  m.header.srtp_map = {mikey::SrtpIdEntry{0, 0x11223344, 0}};
  m.header.cs_count = 1;
  const std::string srtp_id = Reason(m, bob);
  EXPECT_NE(srtp_id.find("SRTP-ID"), std::string::npos) << srtp_id;
  EXPECT_NE(srtp_id.find("RFC 6043 §6.1"), std::string::npos) << srtp_id;
  m.header.srtp_map.clear();
  m.header.cs_id_map_type = 9;
  EXPECT_NE(Reason(m, bob).find("CS ID map type 9"), std::string::npos) << Reason(m, bob);
  auto r = CheckTransferInitEarly(m, bob, kNow);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, UeErrorKind::kVerification);
}

TEST(UeEarlyCheck, ValidityPeriodAlone) {
  mikey::TicketPolicy policy;
  EXPECT_TRUE(CheckTicketValidityPeriod(policy, kNow).ok());  // no TRs / TRe: always
  policy.tp_data = {Tr(mikey::TsRole::kEnd, kNow)};
  EXPECT_TRUE(CheckTicketValidityPeriod(policy, kNow).ok());  // TRe itself is still valid
  EXPECT_NE(CheckTicketValidityPeriod(policy, kNow + 1).error().detail.find("expired (TRe)"), std::string::npos);
  // NTP-UTC-32 values are seconds.
  policy.tp_data = {mikey::TrPayload{static_cast<uint8_t>(mikey::TsRole::kEnd),
                                     static_cast<uint8_t>(mikey::TsType::kNtpUtc32), (kNow >> 32) - 1}};
  EXPECT_FALSE(CheckTicketValidityPeriod(policy, kNow).ok());
  policy.tp_data = {Tr(mikey::TsRole::kStart, kNow + 1)};
  EXPECT_NE(CheckTicketValidityPeriod(policy, kNow).error().detail.find("not valid yet (TRs)"), std::string::npos);
}

}  // namespace
}  // namespace tkms::ue
