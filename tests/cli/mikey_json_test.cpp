// Unit tests of the JSON view of MIKEY messages (tools/tkmsctl/mikey_json.h):
// canonical round trips of every sample and every committed vector, spot
// checks of field values, the decoded views (key_data, base_ticket), and one
// negative test per kind of error, each asserting the JSON path it names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/mikey/codec.h"
#include "tests/support/mikey_samples.h"
#include "tools/tkmsctl/mikey_json.h"

namespace tkms::tkmsctl {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using mikey::Bytes;
using mikey::Message;

std::string ReadText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Bytes ReadVector(const std::filesystem::path& path) {
  auto bytes = Base64Decode(StripWhitespace(ReadText(path)));
  EXPECT_TRUE(bytes.has_value()) << path;
  return bytes.value_or(Bytes{});
}

// tests/vectors/mikey/*.b64 and tests/cli/data/*.b64, sorted.
std::vector<std::filesystem::path> VectorFiles() {
  std::vector<std::filesystem::path> files;
  for (const char* dir : {"/tests/vectors/mikey", "/tests/cli/data"}) {
    for (const auto& e : std::filesystem::directory_iterator(std::string(TKMS_SOURCE_DIR) + dir)) {
      if (e.path().extension() == ".b64") files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

Bytes MustEncode(const Message& m) {
  auto r = mikey::Encode(m);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().ToString());
  return r.ok() ? *r : Bytes{};
}

Json JsonOfVector(const std::string& stem) {
  const Bytes bytes = ReadVector(std::string(TKMS_SOURCE_DIR) + "/tests/vectors/mikey/" + stem + ".b64");
  auto m = mikey::Decode(bytes);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().ToString());
  return m.ok() ? MessageToJson(*m) : Json{};
}

Bytes MustEncodeJson(const Json& j) {
  auto r = EncodeJsonText(j.dump());
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().ToString());
  return r.ok() ? *r : Bytes{};
}

// Encodes `j` expecting a refusal; returns JsonError::ToString().
std::string EncodeError(const Json& j) {
  auto r = EncodeJsonText(j.dump());
  EXPECT_FALSE(r.ok()) << "encoded " << j.dump().substr(0, 200);
  return r.ok() ? std::string() : r.error().ToString();
}

std::string EncodeTextError(const std::string& text) {
  auto r = EncodeJsonText(text);
  EXPECT_FALSE(r.ok());
  return r.ok() ? std::string() : r.error().ToString();
}

// A REQUEST_INIT_PSK whose TP KEMAC (NULL, NULL) carries a well-formed Key
// data chain: TGK with an empty SPI, and TEK+SALT with a validity interval.
Message WithKeyDataChain() {
  Message m = mikey::samples::RequestInitPsk();
  mikey::KeyDataPayload tgk;
  tgk.key_type = static_cast<uint8_t>(mikey::KeyType::kTgk);
  tgk.key = SecretBytes(16, 0);
  tgk.kv.kv_type = static_cast<uint8_t>(mikey::KvType::kSpi);
  mikey::KeyDataPayload tek;
  tek.key_type = static_cast<uint8_t>(mikey::KeyType::kTekSalt);
  tek.key = SecretBytes(16, 0xAB);
  tek.salt = SecretBytes(14, 0xCD);
  tek.kv.kv_type = static_cast<uint8_t>(mikey::KvType::kInterval);
  tek.kv.valid_from = {0, 0, 0, 1};
  tek.kv.valid_to = {0, 0, 0, 2};
  auto chain = mikey::EncodeKeyDataChain({tgk, tek});
  EXPECT_TRUE(chain.ok());
  auto& policy = std::get<mikey::TpPayload>(m.payloads[4]).policy;
  auto& kemac = std::get<mikey::KemacPayload>(policy.tp_data[4]);
  kemac.encr_data.assign(chain->begin(), chain->end());
  return m;
}

void CollectKeys(const Json& j, std::set<std::string>& keys) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      keys.insert(it.key());
      CollectKeys(it.value(), keys);
    }
  } else if (j.is_array()) {
    for (const auto& x : j) CollectKeys(x, keys);
  }
}

// ---- round trips ----------------------------------------------------------------------

class tkmsctl_MikeyJsonSample : public ::testing::TestWithParam<mikey::samples::Sample> {};

TEST_P(tkmsctl_MikeyJsonSample, ModelRoundTrip) {
  const Message& m = GetParam().message;
  auto back = MessageFromJson(MessageToJson(m));
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_EQ(*back, m);
}

TEST_P(tkmsctl_MikeyJsonSample, EncodesToTheSameBytes) {
  const Message& m = GetParam().message;
  EXPECT_EQ(MustEncodeJson(MessageToJson(m)), MustEncode(m));
}

TEST_P(tkmsctl_MikeyJsonSample, TextRoundTripIsStable) {
  const std::string text = MessageToJson(GetParam().message).dump(2);
  auto parsed = ParseJsonText(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().ToString();
  EXPECT_EQ(parsed->dump(2), text);
}

INSTANTIATE_TEST_SUITE_P(Samples, tkmsctl_MikeyJsonSample, ::testing::ValuesIn(mikey::samples::All()),
                         [](const auto& sample) { return sample.param.name; });

TEST(tkmsctl_MikeyJson, EveryVectorFileRoundTrips) {
  const auto files = VectorFiles();
  EXPECT_GE(files.size(), 14u);
  for (const auto& path : files) {
    SCOPED_TRACE(path.string());
    const Bytes bytes = ReadVector(path);
    auto m = mikey::Decode(bytes);
    ASSERT_TRUE(m.ok()) << m.error().ToString();
    EXPECT_EQ(MustEncodeJson(MessageToJson(*m)), bytes);
    // Compact text too.
    auto again = EncodeJsonText(MessageToJson(*m).dump());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, bytes);
  }
}

TEST(tkmsctl_MikeyJson, EveryKeyIsDocumented) {
  std::set<std::string> keys;
  for (const auto& s : mikey::samples::All()) CollectKeys(MessageToJson(s.message), keys);
  CollectKeys(MessageToJson(WithKeyDataChain()), keys);
  const std::string doc = ReadText(std::string(TKMS_SOURCE_DIR) + "/docs/mikey-json.md");
  for (const auto& key : keys) {
    EXPECT_NE(doc.find("`" + key + "`"), std::string::npos) << key << " is not in docs/mikey-json.md";
  }
}

TEST(tkmsctl_MikeyJson, MinimalExampleOfTheDocEncodes) {
  // The last ```json block of docs/mikey-json.md: only the required fields.
  const std::string doc = ReadText(std::string(TKMS_SOURCE_DIR) + "/docs/mikey-json.md");
  const size_t start = doc.rfind("```json\n");
  ASSERT_NE(start, std::string::npos);
  const size_t end = doc.find("```", start + 8);
  ASSERT_NE(end, std::string::npos);
  auto encoded = EncodeJsonText(doc.substr(start + 8, end - start - 8));
  ASSERT_TRUE(encoded.ok()) << encoded.error().ToString();
  EXPECT_EQ(*encoded, ReadVector(std::string(TKMS_SOURCE_DIR) + "/tests/cli/data/rfc4567_psk_resp.b64"));
}

// ---- field values ----------------------------------------------------------------------

TEST(tkmsctl_MikeyJson, RequestInitPskFields) {
  const Json j = JsonOfVector("request_init_psk");
  const Json& h = j["header"];
  EXPECT_EQ(h["version"], 1);
  EXPECT_EQ(h["data_type"], 11);
  EXPECT_EQ(h["data_type_name"], "REQUEST_INIT_PSK");
  EXPECT_EQ(h["v"], true);
  EXPECT_EQ(h["prf_func"], 1);
  EXPECT_EQ(h["prf_func_name"], "PRF-HMAC-SHA-256");
  EXPECT_EQ(h["csb_id"], 0x1A2B3C4Du);
  EXPECT_EQ(h["cs_count"], 0);
  EXPECT_EQ(h["cs_id_map_type"], 1);
  EXPECT_EQ(h["cs_id_map_type_name"], "EMPTY");
  EXPECT_EQ(h["cs_id_map"], Json::array());

  const Json& p = j["payloads"];
  ASSERT_EQ(p.size(), 7u);
  EXPECT_EQ(p[0]["type"], 5);
  EXPECT_EQ(p[0]["name"], "T");
  EXPECT_EQ(p[0]["ts_type"], 0);
  EXPECT_EQ(p[0]["ts_type_name"], "NTP-UTC");
  EXPECT_EQ(p[0]["value"], 0xEB3F2A1080000000ull);
  EXPECT_EQ(p[0]["value_hex"], "eb3f2a1080000000");
  EXPECT_EQ(p[1]["name"], "RANDR");
  EXPECT_EQ(p[1]["role"], 1);
  EXPECT_EQ(p[1]["role_name"], "RANDRi");
  EXPECT_EQ(p[1]["rand"], "01080f161d242b323940474e555c636a");
  EXPECT_EQ(p[2]["name"], "IDR");
  EXPECT_EQ(p[2]["role"], 1);
  EXPECT_EQ(p[2]["role_name"], "IDRi");
  EXPECT_EQ(p[2]["id_type"], 1);
  EXPECT_EQ(p[2]["id_type_name"], "URI");
  EXPECT_EQ(p[2]["data"], "7369703a616c696365406578616d706c652e6f7267");
  EXPECT_EQ(p[2]["id_text"], "sip:alice@example.org");
  EXPECT_EQ(p[3]["role_name"], "IDRkms");

  const Json& tp = p[4];
  EXPECT_EQ(tp["type"], 16);
  EXPECT_EQ(tp["name"], "TP");
  EXPECT_EQ(tp["ticket_type"], 1);
  EXPECT_EQ(tp["ticket_type_name"], "MIKEY base ticket");
  EXPECT_EQ(tp["subtype"], 1);
  EXPECT_EQ(tp["version"], 1);
  EXPECT_EQ(tp["prf_func_name"], "PRF-HMAC-SHA-256");
  const Json want_flags = Json::parse(
      R"({"D":true,"E":true,"F":true,"G":true,"H":true,"I":false,"J":true,"K":false,"L":false,)"
      R"("M":false,"N":true,"O":true})");
  EXPECT_EQ(tp["flags"], want_flags);
  ASSERT_EQ(tp["tp_data"].size(), 6u);
  EXPECT_EQ(tp["tp_data"][2]["name"], "TR");
  EXPECT_EQ(tp["tp_data"][2]["role_name"], "TRs");
  EXPECT_EQ(tp["tp_data"][2]["ts_type_name"], "NTP-UTC-32");
  EXPECT_EQ(tp["tp_data"][2]["value"], 0xEB3F2A10u);
  EXPECT_EQ(tp["tp_data"][2]["value_hex"], "eb3f2a10");
  EXPECT_EQ(tp["tp_data"][4]["name"], "KEMAC");
  EXPECT_EQ(tp["tp_data"][4]["encr_alg_name"], "NULL");
  EXPECT_EQ(tp["tp_data"][4]["mac"], "");
  EXPECT_FALSE(tp.contains("ticket_data"));

  EXPECT_EQ(p[5]["role_name"], "IDRpsk");
  EXPECT_EQ(p[5]["id_type_name"], "BYTE-STRING");
  EXPECT_EQ(p[5]["id_text"], "alice-psk-1");
  EXPECT_EQ(p[6]["name"], "V");
  EXPECT_EQ(p[6]["auth_alg"], 2);
  EXPECT_EQ(p[6]["auth_alg_name"], "HMAC-SHA-256-256");
  EXPECT_EQ(p[6]["mac"].get<std::string>().size(), 64u);
}

TEST(tkmsctl_MikeyJson, Rfc4567PskInitFields) {
  auto m = mikey::Decode(*Base64Decode(mikey::samples::kRfc4567PskInitB64));
  ASSERT_TRUE(m.ok()) << m.error().ToString();
  const Json j = MessageToJson(*m);
  const Json& h = j["header"];
  EXPECT_EQ(h["data_type"], 0);
  EXPECT_EQ(h["data_type_name"], "PSK_INIT");
  EXPECT_EQ(h["prf_func_name"], "MIKEY-1");
  EXPECT_EQ(h["csb_id"], 3440868944u);  // 0xCD177E50
  EXPECT_EQ(h["cs_count"], 1);
  EXPECT_EQ(h["cs_id_map_type_name"], "SRTP-ID");
  EXPECT_EQ(h["cs_id_map"], Json::parse(R"([{"policy_no":0,"ssrc":0,"roc":0}])"));
  const Json& p = j["payloads"];
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0]["value"], 0xC8E350EA00000000ull);
  EXPECT_EQ(p[0]["value_hex"], "c8e350ea00000000");
  EXPECT_EQ(p[1]["name"], "RAND");
  EXPECT_EQ(p[1]["rand"], "4a28da979ee21a7651a0d7f19136d98c");
  EXPECT_EQ(p[2]["name"], "ID");
  EXPECT_EQ(p[2]["id_type"], 0);
  EXPECT_EQ(p[2]["id_type_name"], "NAI");
  EXPECT_EQ(p[2]["id_text"], "donald@duck.com");
  EXPECT_EQ(p[3]["name"], "SP");
  EXPECT_EQ(p[3]["prot_type_name"], "SRTP");
  EXPECT_EQ(p[3]["params"], Json::array());
  EXPECT_EQ(p[4]["name"], "KEMAC");
  EXPECT_EQ(p[4]["encr_alg_name"], "AES-CM-128");
  EXPECT_EQ(p[4]["encr_data"].get<std::string>().size(), 72u);
  EXPECT_EQ(p[4]["mac_alg_name"], "HMAC-SHA-1-160");
  EXPECT_EQ(p[4]["mac"], "5f627a69c6508675f5f59050e4abcca4c0bfdcd5");
  EXPECT_FALSE(p[4].contains("key_data"));  // encrypted: no plaintext view
}

TEST(tkmsctl_MikeyJson, GenericIdMapAndSrtpPolicyFields) {
  const Json j = JsonOfVector("transfer_init");
  EXPECT_EQ(j["header"]["cs_id_map_type_name"], "GENERIC-ID");
  EXPECT_EQ(j["header"]["cs_id_map"][1],
            Json::parse(R"({"cs_id":2,"prot_type":0,"prot_type_name":"SRTP","s":false,"policies":[1],)"
                        R"("session_data":"22222222","spi":""})"));
  const Json& sp = j["payloads"][4];
  EXPECT_EQ(sp["name"], "SP");
  EXPECT_EQ(sp["params"][1], Json::parse(R"({"type":1,"type_name":"Session Encr. key length","value":"10"})"));
}

TEST(tkmsctl_MikeyJson, OtherPayloadFields) {
  const Json dh = JsonOfVector("dh_init")["payloads"];
  EXPECT_EQ(dh[0]["ts_type_name"], "COUNTER");
  EXPECT_EQ(dh[0]["value_hex"], "0000002a");
  EXPECT_EQ(dh[3]["group_name"], "OAKLEY-1");
  EXPECT_EQ(dh[3]["kv_type_name"], "INTERVAL");
  EXPECT_EQ(dh[3]["valid_from"], "00070e151c23");
  EXPECT_EQ(dh[4]["ext_type_name"], "SDP IDs");
  EXPECT_EQ(dh[4]["data_text"], "mikey");
  EXPECT_EQ(dh[5]["s_type_name"], "RSA-PSS");
  const Json pk = JsonOfVector("pk_init")["payloads"];
  EXPECT_EQ(pk[2]["cert_type_name"], "X.509v3-URL");
  EXPECT_EQ(pk[5]["hash_func_name"], "SHA-256");
  EXPECT_EQ(pk[6]["c"], 1);
  const Json err = JsonOfVector("error")["payloads"];
  EXPECT_EQ(err[1]["error_no"], 0);
  EXPECT_EQ(err[1]["error_no_name"], "Auth failure");
  const Json sakke = JsonOfVector("sakke")["payloads"];
  EXPECT_EQ(sakke[4]["role_name"], "IDRkmsi");
  EXPECT_EQ(sakke[6]["params_name"], "Parameter Set 1");
  EXPECT_EQ(sakke[6]["id_scheme_name"], "tel URI with monthly keys");
  EXPECT_EQ(sakke[7]["s_type_name"], "ECCSI");
}

// ---- decoded views -----------------------------------------------------------------------

TEST(tkmsctl_MikeyJson, KeyDataView) {
  const Message m = WithKeyDataChain();
  const Json j = MessageToJson(m);
  const Json& kemac = j["payloads"][4]["tp_data"][4];
  ASSERT_TRUE(kemac.contains("key_data")) << kemac.dump();
  const Json& keys = kemac["key_data"];
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], Json::parse(R"({"key_type":0,"key_type_name":"TGK","key":"00000000000000000000000000000000",)"
                                 R"("kv_type":1,"kv_type_name":"SPI","spi":""})"));
  EXPECT_EQ(keys[1]["key_type_name"], "TEK+SALT");
  EXPECT_EQ(keys[1]["salt"], "cdcdcdcdcdcdcdcdcdcdcdcdcdcd");
  EXPECT_EQ(keys[1]["valid_to"], "00000002");
  const Bytes want = MustEncode(m);
  EXPECT_EQ(MustEncodeJson(j), want);

  // The view alone is encoded.
  Json view_only = j;
  view_only["payloads"][4]["tp_data"][4].erase("encr_data");
  EXPECT_EQ(MustEncodeJson(view_only), want);

  // Hex and view disagree: refused, naming the view.
  Json mismatch = j;
  mismatch["payloads"][4]["tp_data"][4]["key_data"][0]["key"] = "01000000000000000000000000000000";
  EXPECT_THAT(EncodeError(mismatch),
              StartsWith("payloads[4].tp_data[4].key_data: does not match encr_data (encr_data is authoritative"));

  Json no_salt = view_only;
  no_salt["payloads"][4]["tp_data"][4]["key_data"][1].erase("salt");
  EXPECT_THAT(EncodeError(no_salt), StartsWith("payloads[4].tp_data[4].key_data[1].salt: missing field"));

  Json extra_salt = view_only;
  extra_salt["payloads"][4]["tp_data"][4]["key_data"][0]["salt"] = "00";
  EXPECT_THAT(EncodeError(extra_salt), StartsWith("payloads[4].tp_data[4].key_data[0].salt: key type TGK has no salt"));

  Json bad_kv = view_only;
  bad_kv["payloads"][4]["tp_data"][4]["key_data"][1]["spi"] = "00";
  EXPECT_THAT(EncodeError(bad_kv), StartsWith("payloads[4].tp_data[4].key_data[1].spi: only allowed with kv_type 1"));

  Json bad_type = view_only;
  bad_type["payloads"][4]["tp_data"][4]["key_data"][0]["key_type"] = 9;
  bad_type["payloads"][4]["tp_data"][4]["key_data"][0].erase("key_type_name");
  EXPECT_THAT(EncodeError(bad_type), StartsWith("payloads[4].tp_data[4].key_data[0].key_type: key_data.type:"));

  Json encrypted = j;
  encrypted["payloads"][4]["tp_data"][4]["encr_alg"] = 1;
  encrypted["payloads"][4]["tp_data"][4].erase("encr_alg_name");
  EXPECT_THAT(EncodeError(encrypted),
              StartsWith("payloads[4].tp_data[4].key_data: a key_data view is only defined for encr_alg 0"));

  Json neither = j;
  neither["payloads"][4]["tp_data"][4].erase("encr_data");
  neither["payloads"][4]["tp_data"][4].erase("key_data");
  EXPECT_THAT(EncodeError(neither), StartsWith("payloads[4].tp_data[4].encr_data: missing field"));
}

TEST(tkmsctl_MikeyJson, BaseTicketView) {
  const Json j = JsonOfVector("request_resp");
  const Json& ticket = j["payloads"][2];
  ASSERT_EQ(ticket["name"], "TICKET");
  ASSERT_TRUE(ticket.contains("base_ticket"));
  const Json& b = ticket["base_ticket"];
  EXPECT_EQ(b["thdr"], "0001");
  EXPECT_EQ(b["t"]["ts_type_name"], "NTP-UTC");
  EXPECT_EQ(b["rand"].get<std::string>().size(), 64u);
  EXPECT_EQ(b["kemac"]["encr_alg_name"], "AES-CM-256");
  EXPECT_EQ(b["idr_psk"]["role_name"], "IDRpsk");
  EXPECT_EQ(b["idr_psk"]["id_text"], "tk-1");
  EXPECT_EQ(b["v"]["auth_alg_name"], "HMAC-SHA-256-256");
  EXPECT_TRUE(ticket["initiator_data"].is_null());
  const Bytes want = MustEncodeJson(j);

  Json view_only = j;
  view_only["payloads"][2].erase("ticket_data");
  EXPECT_EQ(MustEncodeJson(view_only), want);

  Json mismatch = j;
  mismatch["payloads"][2]["base_ticket"]["thdr"] = "0002";
  EXPECT_THAT(EncodeError(mismatch), StartsWith("payloads[2].base_ticket: does not match ticket_data"));

  Json empty_rand = view_only;
  empty_rand["payloads"][2]["base_ticket"]["rand"] = "";
  EXPECT_THAT(EncodeError(empty_rand), StartsWith("payloads[2].base_ticket.rand: rand.length: RAND length 0"));

  Json bad_v = view_only;
  bad_v["payloads"][2]["base_ticket"]["v"]["mac"] = "00";
  EXPECT_THAT(EncodeError(bad_v), StartsWith("payloads[2].base_ticket.v.mac: mac_length:"));

  Json bad_role = view_only;
  bad_role["payloads"][2]["base_ticket"]["idr_psk"]["role"] = 1;
  bad_role["payloads"][2]["base_ticket"]["idr_psk"].erase("role_name");
  EXPECT_THAT(EncodeError(bad_role), StartsWith("payloads[2].base_ticket.idr_psk: ticket.ticket_data:"));

  Json not_base = j;
  not_base["payloads"][2]["ticket_type"] = 2;
  not_base["payloads"][2].erase("ticket_type_name");
  EXPECT_THAT(EncodeError(not_base), StartsWith("payloads[2].base_ticket: only defined for the MIKEY base ticket"));

  Json bad_hex_ticket = j;
  bad_hex_ticket["payloads"][2].erase("base_ticket");
  bad_hex_ticket["payloads"][2]["ticket_data"] = "0500";
  EXPECT_THAT(EncodeError(bad_hex_ticket), StartsWith("payloads[2].ticket_data: truncated:"));

  const Json forked = JsonOfVector("transfer_init_forked");
  const Json& id = forked["payloads"][5]["initiator_data"];
  EXPECT_EQ(id["vi"]["auth_alg_name"], "HMAC-SHA-256-256");
  EXPECT_EQ(id["vr"]["mac"].get<std::string>().size(), 64u);
  Json bad_vr = forked;
  bad_vr["payloads"][5]["initiator_data"]["vr"]["mac"] = "00";
  EXPECT_THAT(EncodeError(bad_vr), StartsWith("payloads[5].initiator_data.vr.mac: mac_length:"));
  Json other_alg = forked;
  other_alg["payloads"][5]["initiator_data"]["vr"] = Json::parse(R"({"auth_alg":1,"mac":"0000000000000000000000000000000000000000"})");
  EXPECT_THAT(EncodeError(other_alg),
              StartsWith("payloads[5].initiator_data: ticket.initiator_data: Vr must use the authentication algorithm of Vi"));
  Json no_id = forked;
  no_id["payloads"][5].erase("initiator_data");
  EXPECT_EQ(EncodeError(no_id), "payloads[5].initiator_data: missing field");
}

// ---- refusals: syntax, structure, types, ranges --------------------------------------------

TEST(tkmsctl_MikeyJson, SyntaxErrors) {
  EXPECT_THAT(EncodeTextError("{\"header\": }"), StartsWith("JSON syntax error at byte offset 11 (line 1, column 12)"));
  EXPECT_THAT(EncodeTextError("{\n  \"header\": {},\n  \"payloads\": [1,]\n}"),
              StartsWith("payloads: JSON syntax error at byte offset 35 (line 3, column 18)"));
  EXPECT_THAT(EncodeTextError("{} x"), StartsWith("data after the JSON value at byte offset 3"));
  EXPECT_THAT(EncodeTextError(std::string("{}\0x", 4)), StartsWith("data after the JSON value at byte offset 2"));
  EXPECT_THAT(EncodeTextError(""), StartsWith("JSON syntax error at byte offset 0"));
  EXPECT_THAT(EncodeTextError("{\"a\": 1 /* c */}"), StartsWith("JSON syntax error at byte offset 8"));
  EXPECT_EQ(EncodeTextError(R"({"header": {"csb_id": 1, "csb_id": 2}})"),
            "header.csb_id: duplicate key at byte offset 25 (line 1, column 26)");
  EXPECT_THAT(EncodeTextError("{\"header\": \"\xc3\x28\"}"), StartsWith("invalid UTF-8 at byte offset 13 (line 1, column 14): the byte 0x28"));
  EXPECT_THAT(EncodeTextError(std::string(40, '[') + std::string(40, ']')), HasSubstr("nested deeper than 32"));
  EXPECT_EQ(EncodeTextError("[]"), "must be an object, not array");
}

TEST(tkmsctl_MikeyJson, MissingFields) {
  Json j = JsonOfVector("request_init_psk");
  Json a = j;
  a["header"].erase("csb_id");
  EXPECT_EQ(EncodeError(a), "header.csb_id: missing field");
  Json b = j;
  b.erase("payloads");
  EXPECT_EQ(EncodeError(b), "payloads: missing field");
  Json c = j;
  c["payloads"][1].erase("rand");
  EXPECT_EQ(EncodeError(c), "payloads[1].rand: missing field");
  Json d = j;
  d["payloads"][4]["flags"].erase("K");
  EXPECT_EQ(EncodeError(d), "payloads[4].flags.K: missing field");
  Json e = j;
  e["payloads"][4]["tp_data"][0].erase("type");
  EXPECT_EQ(EncodeError(e), "payloads[4].tp_data[0].type: missing field");
}

TEST(tkmsctl_MikeyJson, WrongTypes) {
  const Json j = JsonOfVector("request_init_psk");
  Json a = j;
  a["header"]["v"] = "yes";
  EXPECT_EQ(EncodeError(a), "header.v: must be true or false, not string");
  Json b = j;
  b["header"]["csb_id"] = "1";
  EXPECT_EQ(EncodeError(b), "header.csb_id: must be a number, not string");
  Json c = j;
  c["payloads"] = Json::object();
  EXPECT_EQ(EncodeError(c), "payloads: must be an array, not object");
  Json d = j;
  d["header"]["cs_id_map"] = nullptr;
  EXPECT_EQ(EncodeError(d), "header.cs_id_map: must be an array, not null");
  Json e = j;
  e["payloads"][2] = 14;
  EXPECT_EQ(EncodeError(e), "payloads[2]: must be an object, not number");
  Json f = j;
  f["payloads"][4]["flags"]["D"] = 1;
  EXPECT_EQ(EncodeError(f), "payloads[4].flags.D: must be true or false, not number");
  Json g = j;
  g["payloads"][1]["rand"] = 7;
  EXPECT_EQ(EncodeError(g), "payloads[1].rand: must be a hex string, not number");
  Json h = j;
  h["payloads"][1]["name"] = 15;
  EXPECT_EQ(EncodeError(h), "payloads[1].name: must be a string, not number");
}

TEST(tkmsctl_MikeyJson, OutOfRangeNumbers) {
  const Json j = JsonOfVector("request_init_psk");
  Json a = j;
  a["header"]["data_type"] = 256;
  EXPECT_EQ(EncodeError(a), "header.data_type: 256 is out of range (0..255)");
  Json b = j;
  b["header"]["csb_id"] = 4294967296ull;
  EXPECT_EQ(EncodeError(b), "header.csb_id: 4294967296 is out of range (0..4294967295)");
  Json c = j;
  c["header"]["cs_count"] = -1;
  EXPECT_EQ(EncodeError(c), "header.cs_count: -1 is out of range (0..255)");
  Json d = j;
  d["header"]["prf_func"] = 128;
  d["header"].erase("prf_func_name");
  EXPECT_EQ(EncodeError(d), "header.prf_func: 128 is out of range (0..127)");
  Json e = j;
  e["payloads"][0]["value"] = 1.5;
  EXPECT_EQ(EncodeError(e), "payloads[0].value: must be an integer, not 1.5");
  EXPECT_THAT(EncodeTextError(R"({"header": {"version": 1e400}})"),
              StartsWith("header: number out of range at byte offset 23"));
  Json f = j;
  f["payloads"][4]["ticket_type"] = 65536;
  EXPECT_EQ(EncodeError(f), "payloads[4].ticket_type: 65536 is out of range (0..65535)");
}

TEST(tkmsctl_MikeyJson, UnknownFieldsAndPayloadTypes) {
  const Json j = JsonOfVector("request_init_psk");
  Json a = j;
  a["payloads"][0]["foo"] = 1;
  EXPECT_EQ(EncodeError(a), "payloads[0].foo: unknown field");
  Json b = j;
  b["header"]["csbid"] = 1;
  EXPECT_EQ(EncodeError(b), "header.csbid: unknown field");
  Json c = j;
  c["payloads"][1]["type"] = 99;
  EXPECT_EQ(EncodeError(c), "payloads[1].type: payload type 99 is not defined");
  Json d = j;
  d["payloads"][1]["type"] = 20;
  EXPECT_THAT(EncodeError(d), StartsWith("payloads[1].type: payload type 20 (KEY_DATA) only appears inside a KEMAC"));
  Json e = j;
  e["payloads"][1]["type"] = 0;
  EXPECT_EQ(EncodeError(e), "payloads[1].type: payload type 0 (LAST) is not a payload");
  Json f = j;
  f["payloads"][4]["tp_data"][0] = j["payloads"][0];  // a T in TP Data
  EXPECT_THAT(EncodeError(f), StartsWith("payloads[4].tp_data[0].type: payload type 5 (T) is not allowed in TP Data"));
  Json g = j;
  g["payloads"][5]["role"] = 4;
  g["payloads"][5]["extra"] = true;
  EXPECT_EQ(EncodeError(g), "payloads[5].extra: unknown field");
}

TEST(tkmsctl_MikeyJson, NamesAreCrossChecked) {
  const Json j = JsonOfVector("request_init_psk");
  Json a = j;
  a["payloads"][1]["name"] = "T";  // type 15 is RANDR
  EXPECT_EQ(EncodeError(a),
            "payloads[1].name: \"T\" does not match type 15 (\"RANDR\"); the number is authoritative: fix or "
            "remove name");
  Json b = j;
  b["payloads"][1]["name"] = "NOPE";
  EXPECT_THAT(EncodeError(b), StartsWith("payloads[1].name: \"NOPE\" does not match type 15"));
  Json c = j;
  c["header"]["data_type_name"] = "PSK_INIT";
  EXPECT_THAT(EncodeError(c), StartsWith("header.data_type_name: \"PSK_INIT\" does not match data_type 11"));
  Json d = j;
  d["payloads"][2]["role_name"] = "IDRr";
  EXPECT_THAT(EncodeError(d), StartsWith("payloads[2].role_name:"));
  Json e = j;
  e["payloads"][0]["value_hex"] = "eb3f2a1080000001";
  EXPECT_THAT(EncodeError(e), StartsWith("payloads[0].value_hex: does not match value 16951313772801163264"));
  Json f = j;
  f["payloads"][2]["id_text"] = "sip:mallory@example.org";
  EXPECT_THAT(EncodeError(f), StartsWith("payloads[2].id_text: does not match data"));
  // Informational fields may be left out entirely.
  Json g = j;
  for (auto& p : g["payloads"]) {
    for (const char* key : {"name", "role_name", "id_type_name", "id_text", "value_hex", "ts_type_name",
                            "auth_alg_name", "prf_func_name", "ticket_type_name"}) {
      p.erase(key);
    }
  }
  g["header"].erase("data_type_name");
  EXPECT_EQ(MustEncodeJson(g), MustEncodeJson(j));
}

TEST(tkmsctl_MikeyJson, NonHexBytes) {
  const Json j = JsonOfVector("request_init_psk");
  Json a = j;
  a["payloads"][1]["rand"] = "zz";
  EXPECT_EQ(EncodeError(a), "payloads[1].rand: not a hex string: character 0 is not a hex digit");
  Json b = j;
  b["payloads"][1]["rand"] = "abc";
  EXPECT_EQ(EncodeError(b), "payloads[1].rand: not a hex string: odd number of hex digits (3)");
  Json c = j;
  c["payloads"][2]["data"] = "73 69";
  c["payloads"][2].erase("id_text");
  EXPECT_EQ(EncodeError(c), "payloads[2].data: not a hex string: character 2 is not a hex digit");
  // Upper case is accepted.
  Json d = j;
  d["payloads"][1]["rand"] = "01080F161D242B323940474E555C636A";
  EXPECT_EQ(MustEncodeJson(d), MustEncodeJson(j));
}

TEST(tkmsctl_MikeyJson, StructuralRulesOfTheMapping) {
  Json j = JsonOfVector("request_init_psk");
  j["header"]["cs_id_map"] = Json::parse(R"([{"policy_no":0,"ssrc":0,"roc":0}])");
  EXPECT_EQ(EncodeError(j), "header.cs_id_map: must be empty for cs_id_map_type 1 (EMPTY)");
  Json dh = JsonOfVector("dh_init");
  dh["payloads"][3]["spi"] = "";
  EXPECT_EQ(EncodeError(dh), "payloads[3].spi: only allowed with kv_type 1 (SPI)");
}

// ---- refusals by the codec, located --------------------------------------------------------

TEST(tkmsctl_MikeyJson, CodecRefusalsNameThePath) {
  const Json j = JsonOfVector("request_init_psk");
  Json a = j;
  a["payloads"][6]["auth_alg"] = 7;
  a["payloads"][6].erase("auth_alg_name");
  EXPECT_THAT(EncodeError(a), StartsWith("payloads[6].auth_alg: mac_alg: MAC alg 7 is not defined (MIKEY error 3"));
  Json b = j;
  b["payloads"][6]["mac"] = "00";
  EXPECT_THAT(EncodeError(b), StartsWith("payloads[6].mac: mac_length: MAC of 1 bytes"));
  Json c = j;
  c["header"]["version"] = 2;
  EXPECT_THAT(EncodeError(c), StartsWith("header.version: hdr.version:"));
  Json d = j;
  d["header"]["data_type"] = 99;
  d["header"].erase("data_type_name");
  EXPECT_THAT(EncodeError(d), StartsWith("header.data_type: hdr.data_type: data type 99 is not defined"));
  Json e = j;
  e["payloads"][4]["tp_data"][1]["role"] = 9;
  e["payloads"][4]["tp_data"][1].erase("role_name");
  EXPECT_THAT(EncodeError(e), StartsWith("payloads[4].tp_data[1].role: idr.id_role: ID role 9 is not defined"));
  Json f = j;
  f["payloads"][4]["tp_data"][2]["value"] = 0x100000000ull;
  f["payloads"][4]["tp_data"][2].erase("value_hex");
  EXPECT_THAT(EncodeError(f), StartsWith("payloads[4].tp_data[2].value: field_too_long:"));
  Json g = j;
  g["payloads"][1]["rand"] = "";
  EXPECT_THAT(EncodeError(g), StartsWith("payloads[1].rand: rand.length: RAND length 0"));
  Json h = j;
  h["payloads"][4]["subtype"] = 2;
  EXPECT_THAT(EncodeError(h), StartsWith("payloads[4].ticket_type: tp.ticket_type:"));

  // SIGN must be last.
  Json pk = JsonOfVector("pk_init");
  std::swap(pk["payloads"][6], pk["payloads"][7]);
  EXPECT_THAT(EncodeError(pk), StartsWith("payloads[6]: payload.misplaced:"));
}

TEST(tkmsctl_MikeyJson, MessagesDecodeWouldRefuseAreRefused) {
  const Json j = JsonOfVector("request_init_psk");
  Json no_t = j;
  no_t["payloads"].erase(0);
  EXPECT_THAT(EncodeError(no_t),
              StartsWith("payloads[0]: the encoded message would not decode: offset 10: composition: "));
  Json flags = j;
  flags["payloads"][4]["flags"]["D"] = false;
  EXPECT_THAT(EncodeError(flags),
              StartsWith("payloads[4].flags: the encoded message would not decode: offset 85: tp.flags:"));
  Json header = j;
  header["header"]["cs_count"] = 3;
  EXPECT_THAT(EncodeError(header), HasSubstr("composition.hdr"));
}

TEST(tkmsctl_MikeyJson, LocateEncodeErrorWithoutJson) {
  Message m = mikey::samples::ErrorMessage();
  std::get<mikey::ErrPayload>(m.payloads[1]).error_no = 200;
  auto r = mikey::Encode(m);
  ASSERT_FALSE(r.ok());
  const JsonError located = LocateEncodeError(m, r.error());
  EXPECT_EQ(located.path, "payloads[1].error_no");
  EXPECT_THAT(located.detail, StartsWith("err.error_no: Error no 200 is not defined (MIKEY error 12"));
  EXPECT_EQ(located.detail, CodecErrorText(r.error()));
}

}  // namespace
}  // namespace tkms::tkmsctl
