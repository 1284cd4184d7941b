// Strict MIKEY codec: see codec.h. The public entry points; the Decoder and
// Encoder are in codec_decode*.cpp and codec_encode.cpp (codec_internal.h).
#include "firmware/mikey/codec.h"

#include <string>
#include <utility>

#include "firmware/base/byte_writer.h"
#include "firmware/mikey/codec_internal.h"
#include "firmware/mikey/composition.h"

namespace tkms::mikey {

using codec_internal::Decoder;
using codec_internal::Encoder;
using codec_internal::Num;
using codec_internal::Overloaded;

PayloadType TypeOf(const Payload& p) {
  return std::visit(
      Overloaded{
          [](const KemacPayload&) { return PayloadType::kKemac; },
          [](const PkePayload&) { return PayloadType::kPke; },
          [](const DhPayload&) { return PayloadType::kDh; },
          [](const SignPayload&) { return PayloadType::kSign; },
          [](const TPayload&) { return PayloadType::kT; },
          [](const IdPayload&) { return PayloadType::kId; },
          [](const CertPayload&) { return PayloadType::kCert; },
          [](const ChashPayload&) { return PayloadType::kChash; },
          [](const VPayload&) { return PayloadType::kV; },
          [](const SpPayload&) { return PayloadType::kSp; },
          [](const RandPayload&) { return PayloadType::kRand; },
          [](const ErrPayload&) { return PayloadType::kErr; },
          [](const TrPayload&) { return PayloadType::kTr; },
          [](const IdrPayload&) { return PayloadType::kIdr; },
          [](const RandrPayload&) { return PayloadType::kRandr; },
          [](const TpPayload&) { return PayloadType::kTp; },
          [](const TicketPayload&) { return PayloadType::kTicket; },
          [](const GeneralExtPayload&) { return PayloadType::kGeneralExt; },
          [](const SakkePayload&) { return PayloadType::kSakke; },
      },
      p);
}

PayloadType TypeOf(const TpDataPayload& p) {
  return std::visit(Overloaded{
                        [](const IdrPayload&) { return PayloadType::kIdr; },
                        [](const TrPayload&) { return PayloadType::kTr; },
                        [](const KemacPayload&) { return PayloadType::kKemac; },
                    },
                    p);
}

bool IsBaseTicket(const TicketPolicy& policy) {
  return policy.ticket_type == static_cast<uint16_t>(TicketType::kMikeyBase) &&
         policy.subtype == kBaseTicketSubtype && policy.version == kBaseTicketVersion;
}

Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options, DecodeReport& report) {
  CodecError err;
  report.extents.clear();
  report.header.reset();
  if (bytes.size() > options.limits.max_message_bytes) {
    return CodecError{Rule::kMessageTooLarge, 0,
                      "message of " + Num(bytes.size()) + " bytes exceeds the limit of " +
                          Num(options.limits.max_message_bytes)};
  }
  ByteReader r(bytes);
  Decoder d(options.limits, err);
  Message m;
  if (!d.MessageBody(r, m, &report.extents, &report.header)) return err;
  if (options.check_composition) {
    auto composition = CheckComposition(m, report.extents);
    if (!composition.ok()) return std::move(composition).error();
  }
  return m;
}

Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options,
                                   std::vector<PayloadExtent>& extents) {
  DecodeReport report;
  auto m = Decode(bytes, options, report);
  extents = std::move(report.extents);
  return m;
}

Result<Message, CodecError> Decode(ByteSpan bytes, const DecodeOptions& options) {
  DecodeReport report;
  return Decode(bytes, options, report);
}

Result<Bytes, CodecError> Encode(const Message& message) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  const uint8_t first =
      message.payloads.empty() ? 0 : static_cast<uint8_t>(TypeOf(message.payloads.front()));
  if (!e.Header(w, message.header, first) || !e.Payloads(w, message.payloads)) return err;
  return w.Take();
}

Result<Bytes, CodecError> EncodePayload(const Payload& payload, uint8_t next_payload) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  const bool ok = std::visit([&](const auto& x) { return e.Write(w, x, next_payload); }, payload);
  if (!ok) return err;
  return w.Take();
}

Result<std::vector<KeyDataPayload>, CodecError> DecodeKeyDataChain(ByteSpan plaintext,
                                                                   size_t base_offset) {
  CodecError err;
  DecodeLimits limits;
  Decoder d(limits, err);
  ByteReader r(plaintext, base_offset);
  std::vector<KeyDataPayload> keys;
  if (!d.KeyDataChain(r, keys)) return err;
  return keys;
}

Result<SecretBytes, CodecError> EncodeKeyDataChain(const std::vector<KeyDataPayload>& keys) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint8_t next = i + 1 < keys.size() ? static_cast<uint8_t>(PayloadType::kKeyData) : 0;
    if (!e.KeyData(w, keys[i], next)) return err;
  }
  Bytes plain = w.Take();
  SecretBytes out(plain.begin(), plain.end());
  SecureWipe(plain.data(), plain.size());
  return out;
}

Result<BaseTicketData, CodecError> DecodeBaseTicketData(ByteSpan bytes, size_t base_offset) {
  CodecError err;
  DecodeLimits limits;
  Decoder d(limits, err);
  ByteReader r(bytes, base_offset);
  BaseTicketData b;
  if (!d.BaseTicket(r, b)) return err;
  return b;
}

Result<Bytes, CodecError> EncodeBaseTicketData(const BaseTicketData& data) {
  CodecError err;
  Encoder e(err);
  ByteWriter w;
  if (!e.BaseTicket(w, data)) return err;
  return w.Take();
}

}  // namespace tkms::mikey
