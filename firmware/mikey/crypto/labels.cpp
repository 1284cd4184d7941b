#include "firmware/mikey/crypto/labels.h"

#include <limits>
#include <string>

#include "firmware/base/byte_writer.h"

namespace tkms::mikey::crypto {
namespace {

// The "CS ID" position of labels for keys that are not per crypto session.
constexpr uint8_t kNoCsId = 0xFF;
// The "CSB ID" position of RFC 6043 labels that are not per CSB.
constexpr uint32_t kNoCsbId = 0xFFFFFFFF;

// The byte after 0xFFFFFFFF / CSB ID in RFC 6043 labels.
constexpr uint8_t kForkingTag = 0x00;
constexpr uint8_t kTgkTag = 0x03;
constexpr uint8_t kInitiatorDataTag = 0x04;
constexpr uint8_t kTpkTag = 0x05;
constexpr uint8_t kMpkTag = 0x06;

Status CheckL8(const char* what, size_t size) {
  if (size > std::numeric_limits<uint8_t>::max()) {
    return InvalidArgument(std::string(what) + " of " + std::to_string(size) +
                           " bytes does not fit an 8-bit length");
  }
  return Status::Ok();
}

// L8(Ri) || [Ri] || L8(Rr) || [Rr], absent values as length 0.
Result<std::vector<uint8_t>> EndWithRandPair(ByteWriter& w, std::optional<ByteSpan> randri,
                                            std::optional<ByteSpan> randrr) {
  const ByteSpan ri = randri.value_or(ByteSpan());
  const ByteSpan rr = randrr.value_or(ByteSpan());
  TKMS_RETURN_IF_ERROR(CheckL8("RANDRi", ri.size()));
  TKMS_RETURN_IF_ERROR(CheckL8("RANDRr", rr.size()));
  if (ri.empty() && rr.empty()) {
    return InvalidArgument("at least one of RANDRi and RANDRr must be used");
  }
  w.U8(static_cast<uint8_t>(ri.size())).Bytes(ri);
  w.U8(static_cast<uint8_t>(rr.size())).Bytes(rr);
  return w.Take();
}

// const || 0xFF || 0xFFFFFFFF || tag || L8(RAND) || RAND (RFC 6043 §A.2).
Result<std::vector<uint8_t>> TicketDataLabel(uint32_t constant, uint8_t tag, ByteSpan rand) {
  TKMS_RETURN_IF_ERROR(CheckL8("RAND", rand.size()));
  ByteWriter w;
  w.U32(constant).U8(kNoCsId).U32(kNoCsbId).U8(tag);
  w.U8(static_cast<uint8_t>(rand.size())).Bytes(rand);
  return w.Take();
}

}  // namespace

uint32_t LabelConstant(TgkKeyType type) {
  switch (type) {
    case TgkKeyType::kTek: return 0x2AD01C64;
    case TgkKeyType::kAuth: return 0x1B5C7973;
    case TgkKeyType::kEncr: return 0x15798CEF;
    case TgkKeyType::kSalt: return 0x39A2C14B;
  }
  return 0;
}

uint32_t LabelConstant(MessageKeyType type) {
  switch (type) {
    case MessageKeyType::kEncr: return 0x150533E1;
    case MessageKeyType::kAuth: return 0x2D22AC75;
    case MessageKeyType::kSalt: return 0x29B88916;
  }
  return 0;
}

uint32_t LabelConstant(ForkedKeyType type) {
  switch (type) {
    case ForkedKeyType::kMpkr: return 0x2B288856;
    case ForkedKeyType::kTgk: return 0x1512B54A;
  }
  return 0;
}

uint32_t LabelConstant(MpkKeyType type) {
  switch (type) {
    case MpkKeyType::kMpki: return 0x220E99A2;
    case MpkKeyType::kMpkr: return 0x1F4D675B;
  }
  return 0;
}

Result<TicketTekContext> TicketTekContextFromFlags(uint8_t cs_id, bool h_flag, bool g_flag,
                                                   ByteSpan randri, ByteSpan randrr) {
  if (!h_flag && !g_flag) {
    return InvalidArgument("Ticket Policy has neither H nor G flag: no RAND for the TEK label");
  }
  if (h_flag && randri.empty()) return InvalidArgument("H flag set but RANDRi is missing");
  if (g_flag && randrr.empty()) return InvalidArgument("G flag set but RANDRr is missing");
  TicketTekContext context;
  context.cs_id = cs_id;
  if (h_flag) context.randri = randri;
  if (g_flag) context.randrr = randrr;
  return context;
}

std::vector<uint8_t> Rfc3830TgkLabel(TgkKeyType type, const Rfc3830TekContext& context) {
  ByteWriter w;
  w.U32(LabelConstant(type)).U8(context.cs_id).U32(context.csb_id).Bytes(context.rand);
  return w.Take();
}

std::vector<uint8_t> Rfc3830MessageLabel(MessageKeyType type, uint32_t csb_id, ByteSpan rand) {
  ByteWriter w;
  w.U32(LabelConstant(type)).U8(kNoCsId).U32(csb_id).Bytes(rand);
  return w.Take();
}

Result<std::vector<uint8_t>> TicketMessageLabel(MessageKeyType type, Direction direction,
                                                uint32_t csb_id, std::optional<ByteSpan> randri,
                                                std::optional<ByteSpan> randrr) {
  if (direction != Direction::kInitial && direction != Direction::kResponse) {
    return InvalidArgument("unknown message direction");
  }
  ByteWriter w;
  w.U32(LabelConstant(type)).U8(kNoCsId).U32(csb_id).U8(static_cast<uint8_t>(direction));
  return EndWithRandPair(w, randri, randrr);
}

Result<std::vector<uint8_t>> TicketTgkLabel(TgkKeyType type, const TicketTekContext& context) {
  ByteWriter w;
  w.U32(LabelConstant(type)).U8(context.cs_id).U32(kNoCsbId).U8(kTgkTag);
  return EndWithRandPair(w, context.randri, context.randrr);
}

Result<std::vector<uint8_t>> ForkingLabel(ForkedKeyType type, ByteSpan id_data,
                                          ByteSpan randrkms) {
  if (id_data.size() > std::numeric_limits<uint16_t>::max()) {
    return InvalidArgument("ID Data of " + std::to_string(id_data.size()) +
                           " bytes does not fit a 16-bit length");
  }
  TKMS_RETURN_IF_ERROR(CheckL8("RANDRkms", randrkms.size()));
  ByteWriter w;
  w.U32(LabelConstant(type)).U8(kNoCsId).U32(kNoCsbId).U8(kForkingTag);
  w.U16(static_cast<uint16_t>(id_data.size())).Bytes(id_data);
  w.U8(static_cast<uint8_t>(randrkms.size())).Bytes(randrkms);
  return w.Take();
}

std::vector<uint8_t> InitiatorDataLabel(MessageKeyType type) {
  ByteWriter w;
  w.U32(LabelConstant(type)).U8(kNoCsId).U32(kNoCsbId).U8(kInitiatorDataTag);
  return w.Take();
}

Result<std::vector<uint8_t>> TpkLabel(MessageKeyType type, ByteSpan rand) {
  return TicketDataLabel(LabelConstant(type), kTpkTag, rand);
}

Result<std::vector<uint8_t>> MpkLabel(MpkKeyType type, ByteSpan rand) {
  return TicketDataLabel(LabelConstant(type), kMpkTag, rand);
}

}  // namespace tkms::mikey::crypto
