#include "tools/ue/sdp.h"

#include <optional>
#include <utility>

#include "firmware/base/encoding.h"

namespace tkms::ue {

namespace {

constexpr std::string_view kKeyMgmt = "a=key-mgmt:";
constexpr std::string_view kMikey = "mikey";
constexpr std::string_view kNoMikeyLine = "no a=key-mgmt:mikey line";

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Iterates over lines (CRLF or LF), without the line end.
class Lines {
 public:
  explicit Lines(std::string_view text) : text_(text) {}
  // The next line and the offset at which it starts; false at the end.
  bool Next(std::string_view& line, size_t& start) {
    if (pos_ >= text_.size()) return false;
    start = pos_;
    const size_t nl = text_.find('\n', pos_);
    const size_t end = nl == std::string_view::npos ? text_.size() : nl;
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = nl == std::string_view::npos ? text_.size() : nl + 1;
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

bool IsIpv4Literal(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (parts < 4) {
    size_t digits = 0;
    unsigned value = 0;
    while (i < s.size() && IsDigit(s[i]) && digits < 3) {
      value = value * 10 + static_cast<unsigned>(s[i] - '0');
      ++i;
      ++digits;
    }
    if (digits == 0 || value > 255) return false;
    ++parts;
    if (parts < 4) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
  }
  return i == s.size();
}

Result<std::string> KeyMgmtLine(ByteSpan mikey) {
  if (mikey.empty()) return InvalidArgument("the MIKEY message is empty");
  if (mikey.size() > kMaxMikeyBytes) return InvalidArgument("the MIKEY message is longer than kMaxMikeyBytes");
  return std::string(kKeyMgmt) + std::string(kMikey) + " " + Base64Encode(mikey) + "\r\n";
}

}  // namespace

Result<std::string> BuildAudioSdp(const AudioSdpParams& params, ByteSpan mikey) {
  if (!IsIpv4Literal(params.address)) return InvalidArgument("the address is not a dotted IPv4 literal");
  if (params.rtp_port == 0) return InvalidArgument("the RTP port is 0");
  auto key_mgmt = KeyMgmtLine(mikey);
  if (!key_mgmt.ok()) return key_mgmt.error();
  const std::string id = std::to_string(params.session_id);
  std::string out;
  out += "v=0\r\n";
  out += "o=- " + id + " " + id + " IN IP4 " + params.address + "\r\n";
  out += "s=-\r\n";
  out += "c=IN IP4 " + params.address + "\r\n";
  out += "t=0 0\r\n";
  out += *key_mgmt;
  out += "m=audio " + std::to_string(params.rtp_port) + " RTP/SAVP 0\r\n";
  return out;
}

Result<std::string> AddMikeyKeyMgmt(std::string_view sdp, ByteSpan mikey) {
  if (sdp.size() > kMaxSdpBytes) return InvalidArgument("the SDP is longer than kMaxSdpBytes");
  auto key_mgmt = KeyMgmtLine(mikey);
  if (!key_mgmt.ok()) return key_mgmt.error();
  // Only an SDP without any (valid or malformed) mikey line gets one.
  if (auto existing = ExtractMikeyKeyMgmt(sdp); existing.ok() || existing.error().message() != kNoMikeyLine) {
    return InvalidArgument("the SDP already has (or has a malformed) a=key-mgmt:mikey line");
  }
  Lines lines(sdp);
  std::string_view line;
  size_t start = 0;
  size_t insert_at = sdp.size();
  while (lines.Next(line, start)) {
    if (line.substr(0, 2) == "m=") {
      insert_at = start;
      break;
    }
  }
  std::string out(sdp.substr(0, insert_at));
  if (!out.empty() && out.back() != '\n') out += "\r\n";  // an unterminated last line
  out += *key_mgmt;
  out += sdp.substr(insert_at);
  if (out.size() > kMaxSdpBytes) return InvalidArgument("the SDP would be longer than kMaxSdpBytes");
  return out;
}

Result<mikey::Bytes> ExtractMikeyKeyMgmt(std::string_view sdp) {
  if (sdp.size() > kMaxSdpBytes) return InvalidArgument("the SDP is longer than kMaxSdpBytes");
  // Base64 of kMaxMikeyBytes: 4 characters per 3 bytes, padded.
  constexpr size_t kMaxData = (kMaxMikeyBytes + 2) / 3 * 4;
  std::optional<mikey::Bytes> found;
  Lines lines(sdp);
  std::string_view line;
  size_t start = 0;
  while (lines.Next(line, start)) {
    if (line.substr(0, kKeyMgmt.size()) != kKeyMgmt) continue;
    std::string_view rest = line.substr(kKeyMgmt.size());
    if (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);  // 0*1SP
    size_t id_len = 0;
    while (id_len < rest.size() && IsAlnum(rest[id_len])) ++id_len;
    const std::string_view id = rest.substr(0, id_len);
    if (id != kMikey) continue;  // another key management protocol (or not one at all)
    const std::string where = "line at offset " + std::to_string(start);
    if (id_len >= rest.size() || rest[id_len] != ' ') {
      return InvalidArgument("a=key-mgmt:mikey " + where + " has no SP before its data");
    }
    const std::string_view data = rest.substr(id_len + 1);
    if (data.empty()) return InvalidArgument("a=key-mgmt:mikey " + where + " has no data");
    if (data.size() > kMaxData) return InvalidArgument("a=key-mgmt:mikey " + where + " is longer than kMaxMikeyBytes");
    auto decoded = Base64Decode(data);
    if (!decoded) return InvalidArgument("a=key-mgmt:mikey " + where + ": data is not strict base64");
    if (decoded->empty()) return InvalidArgument("a=key-mgmt:mikey " + where + " has no data");
    if (found) return InvalidArgument("two a=key-mgmt:mikey lines (" + where + ")");
    found = std::move(*decoded);
  }
  if (!found) return InvalidArgument(std::string(kNoMikeyLine));
  return std::move(*found);
}

Result<uint16_t> AudioRtpPort(std::string_view sdp) {
  if (sdp.size() > kMaxSdpBytes) return InvalidArgument("the SDP is longer than kMaxSdpBytes");
  constexpr std::string_view kAudio = "m=audio ";
  Lines lines(sdp);
  std::string_view line;
  size_t start = 0;
  while (lines.Next(line, start)) {
    if (line.substr(0, kAudio.size()) != kAudio) continue;
    const std::string_view rest = line.substr(kAudio.size());
    size_t i = 0;
    unsigned port = 0;
    while (i < rest.size() && IsDigit(rest[i]) && i < 5) {
      port = port * 10 + static_cast<unsigned>(rest[i] - '0');
      ++i;
    }
    if (i == 0 || port == 0 || port > 65535 || i >= rest.size() || rest[i] != ' ') {
      return InvalidArgument("m=audio line with an invalid port");
    }
    return static_cast<uint16_t>(port);
  }
  return InvalidArgument("no m=audio line");
}

Result<std::string> AudioConnectionAddress(std::string_view sdp) {
  if (sdp.size() > kMaxSdpBytes) return InvalidArgument("the SDP is longer than kMaxSdpBytes");
  constexpr std::string_view kAudio = "m=audio ";
  constexpr std::string_view kIp4 = "c=IN IP4 ";
  std::optional<std::string_view> session_c, media_c;
  bool in_session = true, in_audio = false;
  Lines lines(sdp);
  std::string_view line;
  size_t start = 0;
  while (lines.Next(line, start)) {
    if (line.substr(0, 2) == "m=") {
      if (in_audio) break;  // the end of the first audio stream's section
      in_session = false;
      in_audio = line.substr(0, kAudio.size()) == kAudio;
      continue;
    }
    if (line.substr(0, 2) != "c=") continue;
    if (in_session) {
      if (session_c) return InvalidArgument("two session-level c= lines");
      session_c = line;
    } else if (in_audio) {
      if (media_c) return InvalidArgument("two c= lines in the audio stream");
      media_c = line;
    }
  }
  if (!in_audio) return InvalidArgument("no m=audio line");
  const std::optional<std::string_view> c = media_c ? media_c : session_c;
  if (!c) return InvalidArgument("no c= line for the audio stream");
  if (c->substr(0, kIp4.size()) != kIp4) return InvalidArgument("the audio stream's c= line is not \"c=IN IP4 ADDRESS\"");
  const std::string_view address = c->substr(kIp4.size());
  if (!IsIpv4Literal(address)) return InvalidArgument("the audio stream's c= address is not a dotted IPv4 literal");
  return std::string(address);
}

}  // namespace tkms::ue
