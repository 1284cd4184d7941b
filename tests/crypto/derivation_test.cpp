// Every MIKEY key derivation (labels.h, derivation.h, srtp_keys.h) against the
// vectors that kat_gen.py computes independently from the RFC text, plus
// hand-written label layouts and argument checks.
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "firmware/base/encoding.h"
#include "firmware/mikey/crypto/derivation.h"
#include "firmware/mikey/crypto/srtp_keys.h"
#include "firmware/mikey/crypto/transient_provider.h"
#include "tests/crypto/kat_file.h"

namespace tkms::mikey::crypto {
namespace {

using Bytes = std::vector<uint8_t>;
using LabelFor = std::function<Result<Bytes>(MessageKeyType)>;

Bytes FromHex(std::string_view hex) { return HexDecode(hex).value(); }

std::optional<ByteSpan> AsSpan(const std::optional<Bytes>& bytes) {
  if (!bytes) return std::nullopt;
  return ByteSpan(*bytes);
}

TgkKeyType TgkTypeNamed(const std::string& name) {
  if (name == "tek") return TgkKeyType::kTek;
  if (name == "auth") return TgkKeyType::kAuth;
  if (name == "encr") return TgkKeyType::kEncr;
  EXPECT_EQ(name, "salt");
  return TgkKeyType::kSalt;
}

ForkedKeyType ForkedTypeNamed(const std::string& name) {
  if (name == "mpkr") return ForkedKeyType::kMpkr;
  EXPECT_EQ(name, "tgk");
  return ForkedKeyType::kTgk;
}

MpkKeyType MpkTypeNamed(const std::string& name) {
  if (name == "mpki") return MpkKeyType::kMpki;
  EXPECT_EQ(name, "mpkr");
  return MpkKeyType::kMpkr;
}

Direction DirectionNamed(const std::string& name) {
  if (name == "initial") return Direction::kInitial;
  EXPECT_EQ(name, "response");
  return Direction::kResponse;
}

std::string LabelHex(const Result<Bytes>& label) {
  if (!label.ok()) return "error: " + label.error().ToString();
  return HexEncode(*label);
}

std::vector<test::KatRecord> Records(const char* kind, size_t at_least) {
  auto records = test::LoadKatKind(test::CryptoKatPath(), kind);
  EXPECT_TRUE(records.ok()) << records.error().ToString();
  if (!records.ok()) return {};
  EXPECT_GE(records->size(), at_least) << kind;
  return std::move(*records);
}

// Compares a record's encr/salt/auth labels and keys with label_for and keys.
void ExpectMessageKeys(test::KatRecord& r, const LabelFor& label_for,
                       const Result<MessageKeys>& keys) {
  EXPECT_EQ(LabelHex(label_for(MessageKeyType::kEncr)), HexEncode(r.Hex("encr_label")));
  EXPECT_EQ(LabelHex(label_for(MessageKeyType::kSalt)), HexEncode(r.Hex("salt_label")));
  EXPECT_EQ(LabelHex(label_for(MessageKeyType::kAuth)), HexEncode(r.Hex("auth_label")));
  const std::string encr = HexEncode(r.Hex("encr_key"));
  const std::string salt = HexEncode(r.Hex("salt_key"));
  const std::string auth = HexEncode(r.Hex("auth_key"));
  ASSERT_TRUE(keys.ok()) << keys.error().ToString();
  EXPECT_EQ(HexEncode(keys->encr_key), encr);
  EXPECT_EQ(HexEncode(keys->salt_key), salt);
  EXPECT_EQ(HexEncode(keys->auth_key), auth);
}

void ExpectFinished(const test::KatRecord& r) {
  Status finish = r.Finish();
  EXPECT_TRUE(finish.ok()) << finish.ToString();
}

TEST(crypto_DerivationKat, Rfc3830TgkKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("rfc3830_tgk", 8)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr tgk = TransientCryptoProvider::MakeKey(r.Hex("tgk"));
    const TgkKeyType type = TgkTypeNamed(r.Str("key"));
    const Bytes rand = r.Hex("rand");
    const Rfc3830TekContext context{static_cast<uint8_t>(r.Uint("cs_id")),
                                    static_cast<uint32_t>(r.Uint("csb_id")), rand};
    EXPECT_EQ(HexEncode(Rfc3830TgkLabel(type, context)), HexEncode(r.Hex("label")));
    const std::string expected = HexEncode(r.Hex("out"));
    auto out = DeriveFromTgk(provider, prf, *tgk, type, context, r.Uint("outlen"));
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(HexEncode(*out), expected);
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, Rfc3830MessageKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("rfc3830_msg", 4)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr inkey = TransientCryptoProvider::MakeKey(r.Hex("inkey"));
    const auto csb_id = static_cast<uint32_t>(r.Uint("csb_id"));
    const Bytes rand = r.Hex("rand");
    const auto encr_alg = static_cast<EncrAlg>(r.Uint("encr_alg"));
    const auto mac_alg = static_cast<MacAlg>(r.Uint("mac_alg"));
    ExpectMessageKeys(
        r, [&](MessageKeyType t) -> Result<Bytes> { return Rfc3830MessageLabel(t, csb_id, rand); },
        DeriveRfc3830MessageKeys(provider, prf, *inkey, csb_id, rand, encr_alg, mac_alg));
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, TicketMessageKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("ticket_msg", 9)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr inkey = TransientCryptoProvider::MakeKey(r.Hex("inkey"));
    const Direction direction = DirectionNamed(r.Str("direction"));
    const auto csb_id = static_cast<uint32_t>(r.Uint("csb_id"));
    const std::optional<Bytes> randri = r.OptionalHex("randri");
    const std::optional<Bytes> randrr = r.OptionalHex("randrr");
    const auto encr_alg = static_cast<EncrAlg>(r.Uint("encr_alg"));
    const auto mac_alg = static_cast<MacAlg>(r.Uint("mac_alg"));
    ExpectMessageKeys(
        r,
        [&](MessageKeyType t) {
          return TicketMessageLabel(t, direction, csb_id, AsSpan(randri), AsSpan(randrr));
        },
        DeriveMessageKeys(provider, prf, *inkey, direction, csb_id, AsSpan(randri),
                          AsSpan(randrr), encr_alg, mac_alg));
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, TicketTgkKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("ticket_tgk", 6)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr tgk = TransientCryptoProvider::MakeKey(r.Hex("tgk"));
    const TgkKeyType type = TgkTypeNamed(r.Str("key"));
    const std::optional<Bytes> randri = r.OptionalHex("randri");
    const std::optional<Bytes> randrr = r.OptionalHex("randrr");
    const TicketTekContext context{static_cast<uint8_t>(r.Uint("cs_id")), AsSpan(randri),
                                   AsSpan(randrr)};
    EXPECT_EQ(LabelHex(TicketTgkLabel(type, context)), HexEncode(r.Hex("label")));
    const std::string expected = HexEncode(r.Hex("out"));
    auto out = DeriveFromTgk(provider, prf, *tgk, type, context, r.Uint("outlen"));
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(HexEncode(*out), expected);
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, ForkedKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("fork", 4)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr inkey = TransientCryptoProvider::MakeKey(r.Hex("inkey"));
    const ForkedKeyType type = ForkedTypeNamed(r.Str("key"));
    const Bytes id_data = r.Hex("id_data");
    const Bytes randrkms = r.Hex("randrkms");
    EXPECT_EQ(LabelHex(ForkingLabel(type, id_data, randrkms)), HexEncode(r.Hex("label")));
    const std::string expected = HexEncode(r.Hex("out"));
    auto out = DeriveForkedKey(provider, prf, *inkey, type, id_data, randrkms);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(out->size(), inkey->size());
    EXPECT_EQ(HexEncode(*out), expected);
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, InitiatorDataAuthKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("vr_auth", 3)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr mpkr = TransientCryptoProvider::MakeKey(r.Hex("mpkr"));
    const auto mac_alg = static_cast<MacAlg>(r.Uint("mac_alg"));
    EXPECT_EQ(HexEncode(InitiatorDataLabel(MessageKeyType::kAuth)), HexEncode(r.Hex("label")));
    const std::string expected = HexEncode(r.Hex("out"));
    auto out = DeriveInitiatorDataAuthKey(provider, prf, *mpkr, mac_alg);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(HexEncode(*out), expected);
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, TicketProtectionKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("tpk", 3)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr tpk = TransientCryptoProvider::MakeKey(r.Hex("tpk"));
    const Bytes rand = r.Hex("rand");
    const auto encr_alg = static_cast<EncrAlg>(r.Uint("encr_alg"));
    const auto mac_alg = static_cast<MacAlg>(r.Uint("mac_alg"));
    ExpectMessageKeys(r, [&](MessageKeyType t) { return TpkLabel(t, rand); },
                      DeriveTicketProtectionKeys(provider, prf, *tpk, rand, encr_alg, mac_alg));
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, MpkKeys) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("mpk", 4)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr mpk = TransientCryptoProvider::MakeKey(r.Hex("mpk"));
    const MpkKeyType type = MpkTypeNamed(r.Str("key"));
    const Bytes rand = r.Hex("rand");
    EXPECT_EQ(LabelHex(MpkLabel(type, rand)), HexEncode(r.Hex("label")));
    const std::string expected = HexEncode(r.Hex("out"));
    auto out = DeriveMpkKey(provider, prf, *mpk, type, rand);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(HexEncode(*out), expected);
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, SrtpMasterKeysRfc3830) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("srtp_3830", 3)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr tgk = TransientCryptoProvider::MakeKey(r.Hex("tgk"));
    const Bytes rand = r.Hex("rand");
    const Rfc3830TekContext context{static_cast<uint8_t>(r.Uint("cs_id")),
                                    static_cast<uint32_t>(r.Uint("csb_id")), rand};
    const size_t key_len = r.Uint("key_len");
    const std::optional<Bytes> salt = r.OptionalHex("key_data_salt");
    const std::string master_key = HexEncode(r.Hex("master_key"));
    const std::string master_salt = HexEncode(r.Hex("master_salt"));
    auto keys = DeriveSrtpMasterKeys(provider, prf, *tgk, context, key_len, AsSpan(salt));
    ASSERT_TRUE(keys.ok()) << keys.error().ToString();
    EXPECT_EQ(HexEncode(keys->master_key), master_key);
    EXPECT_EQ(HexEncode(keys->master_salt), master_salt);
    ExpectFinished(r);
  }
}

TEST(crypto_DerivationKat, SrtpMasterKeysRfc6043) {
  TransientCryptoProvider provider;
  for (test::KatRecord& r : Records("srtp_6043", 4)) {
    SCOPED_TRACE(r.where());
    const auto prf = static_cast<PrfFunc>(r.Uint("prf"));
    SecretKeyPtr tgk = TransientCryptoProvider::MakeKey(r.Hex("tgk"));
    const auto cs_id = static_cast<uint8_t>(r.Uint("cs_id"));
    const bool h_flag = r.Uint("h") != 0;
    const bool g_flag = r.Uint("g") != 0;
    const std::optional<Bytes> randri = r.OptionalHex("randri");
    const std::optional<Bytes> randrr = r.OptionalHex("randrr");
    const size_t key_len = r.Uint("key_len");
    const std::optional<Bytes> salt = r.OptionalHex("key_data_salt");
    const std::string master_key = HexEncode(r.Hex("master_key"));
    const std::string master_salt = HexEncode(r.Hex("master_salt"));
    ASSERT_TRUE(randri && randrr);
    auto context = TicketTekContextFromFlags(cs_id, h_flag, g_flag, *randri, *randrr);
    ASSERT_TRUE(context.ok()) << context.error().ToString();
    auto keys = DeriveSrtpMasterKeys(provider, prf, *tgk, *context, key_len, AsSpan(salt));
    ASSERT_TRUE(keys.ok()) << keys.error().ToString();
    EXPECT_EQ(HexEncode(keys->master_key), master_key);
    EXPECT_EQ(HexEncode(keys->master_salt), master_salt);
    ExpectFinished(r);
  }
}

// Layouts written out by hand from the RFC clauses, independent of kat.txt.
TEST(crypto_Label, HandWrittenLayouts) {
  const Bytes rand = FromHex("a1a2a3");
  EXPECT_EQ(HexEncode(Rfc3830TgkLabel(TgkKeyType::kTek, {7, 0x01020304, rand})),
            "2ad01c64" "07" "01020304" "a1a2a3");
  EXPECT_EQ(HexEncode(Rfc3830MessageLabel(MessageKeyType::kSalt, 0x01020304, rand)),
            "29b88916" "ff" "01020304" "a1a2a3");
  EXPECT_EQ(LabelHex(TicketMessageLabel(MessageKeyType::kAuth, Direction::kResponse, 0x01020304,
                                        ByteSpan(rand), std::nullopt)),
            "2d22ac75" "ff" "01020304" "02" "03a1a2a3" "00");
  EXPECT_EQ(LabelHex(TicketMessageLabel(MessageKeyType::kEncr, Direction::kInitial, 0xdeadbeef,
                                        std::nullopt, ByteSpan(rand))),
            "150533e1" "ff" "deadbeef" "01" "00" "03a1a2a3");
  EXPECT_EQ(LabelHex(TicketTgkLabel(TgkKeyType::kSalt, {9, ByteSpan(rand), ByteSpan(rand)})),
            "39a2c14b" "09" "ffffffff" "03" "03a1a2a3" "03a1a2a3");
  const Bytes id = {'b', 'o', 'b'};
  EXPECT_EQ(LabelHex(ForkingLabel(ForkedKeyType::kMpkr, id, rand)),
            "2b288856" "ff" "ffffffff" "00" "0003626f62" "03a1a2a3");
  EXPECT_EQ(LabelHex(ForkingLabel(ForkedKeyType::kTgk, id, rand)).substr(0, 8), "1512b54a");
  EXPECT_EQ(HexEncode(InitiatorDataLabel(MessageKeyType::kAuth)), "2d22ac75ffffffffff04");
  EXPECT_EQ(LabelHex(TpkLabel(MessageKeyType::kEncr, rand)),
            "150533e1" "ff" "ffffffff" "05" "03a1a2a3");
  EXPECT_EQ(LabelHex(MpkLabel(MpkKeyType::kMpki, rand)),
            "220e99a2" "ff" "ffffffff" "06" "03a1a2a3");
  EXPECT_EQ(LabelHex(MpkLabel(MpkKeyType::kMpkr, rand)).substr(0, 8), "1f4d675b");
}

TEST(crypto_Label, Constants) {
  EXPECT_EQ(LabelConstant(TgkKeyType::kTek), 0x2AD01C64u);
  EXPECT_EQ(LabelConstant(TgkKeyType::kAuth), 0x1B5C7973u);
  EXPECT_EQ(LabelConstant(TgkKeyType::kEncr), 0x15798CEFu);
  EXPECT_EQ(LabelConstant(TgkKeyType::kSalt), 0x39A2C14Bu);
  EXPECT_EQ(LabelConstant(MessageKeyType::kEncr), 0x150533E1u);
  EXPECT_EQ(LabelConstant(MessageKeyType::kAuth), 0x2D22AC75u);
  EXPECT_EQ(LabelConstant(MessageKeyType::kSalt), 0x29B88916u);
  EXPECT_EQ(LabelConstant(ForkedKeyType::kMpkr), 0x2B288856u);
  EXPECT_EQ(LabelConstant(ForkedKeyType::kTgk), 0x1512B54Au);
  EXPECT_EQ(LabelConstant(MpkKeyType::kMpki), 0x220E99A2u);
  EXPECT_EQ(LabelConstant(MpkKeyType::kMpkr), 0x1F4D675Bu);
}

TEST(crypto_Label, RefusesLengthsThatDoNotFit) {
  const Bytes rand255(255, 1), rand256(256, 1), id65535(65535, 2), id65536(65536, 2);
  EXPECT_TRUE(TicketMessageLabel(MessageKeyType::kAuth, Direction::kInitial, 1, ByteSpan(rand255),
                                 std::nullopt)
                  .ok());
  EXPECT_EQ(TicketMessageLabel(MessageKeyType::kAuth, Direction::kInitial, 1, ByteSpan(rand256),
                               std::nullopt)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TicketTgkLabel(TgkKeyType::kTek, {1, std::nullopt, ByteSpan(rand256)}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(ForkingLabel(ForkedKeyType::kTgk, id65535, rand255).ok());
  EXPECT_EQ(ForkingLabel(ForkedKeyType::kTgk, id65536, rand255).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ForkingLabel(ForkedKeyType::kTgk, id65535, rand256).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TpkLabel(MessageKeyType::kSalt, rand256).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(MpkLabel(MpkKeyType::kMpki, rand256).error().code(), StatusCode::kInvalidArgument);
}

TEST(crypto_Label, TicketLabelsNeedARand) {
  const Bytes empty;
  EXPECT_EQ(TicketMessageLabel(MessageKeyType::kAuth, Direction::kInitial, 1, std::nullopt,
                               std::nullopt)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TicketMessageLabel(MessageKeyType::kAuth, Direction::kInitial, 1, ByteSpan(empty),
                               ByteSpan(empty))
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TicketTgkLabel(TgkKeyType::kTek, {1, std::nullopt, std::nullopt}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(TicketMessageLabel(MessageKeyType::kAuth, static_cast<Direction>(3), 1,
                               ByteSpan(FromHex("01")), std::nullopt)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(crypto_Label, TekContextFollowsPolicyFlags) {
  const Bytes ri = FromHex("0102"), rr = FromHex("0304"), empty;
  auto h_only = TicketTekContextFromFlags(5, true, false, ri, rr);
  ASSERT_TRUE(h_only.ok());
  EXPECT_EQ(h_only->cs_id, 5);
  EXPECT_TRUE(h_only->randri.has_value());
  EXPECT_FALSE(h_only->randrr.has_value());
  auto g_only = TicketTekContextFromFlags(5, false, true, empty, rr);
  ASSERT_TRUE(g_only.ok());
  EXPECT_FALSE(g_only->randri.has_value());
  EXPECT_TRUE(g_only->randrr.has_value());
  EXPECT_FALSE(TicketTekContextFromFlags(5, false, false, ri, rr).ok());
  EXPECT_FALSE(TicketTekContextFromFlags(5, true, false, empty, rr).ok());
  EXPECT_FALSE(TicketTekContextFromFlags(5, true, true, ri, empty).ok());
}

TEST(crypto_Derivation, KeyLengthsFollowTheAlgorithms) {
  struct Case {
    EncrAlg encr;
    MacAlg mac;
    size_t encr_len, salt_len, auth_len;
  };
  const Case cases[] = {
      {EncrAlg::kNull, MacAlg::kNull, 0, 0, 0},
      {EncrAlg::kAesCm128, MacAlg::kHmacSha1_160, 16, 14, 20},
      {EncrAlg::kAesKw128, MacAlg::kNull, 16, 8, 0},
      {EncrAlg::kAesCm256, MacAlg::kHmacSha256_256, 32, 14, 32},
  };
  for (const Case& c : cases) {
    auto lengths = KeyLengthsFor(c.encr, c.mac);
    ASSERT_TRUE(lengths.ok());
    EXPECT_EQ(lengths->encr, c.encr_len);
    EXPECT_EQ(lengths->salt, c.salt_len);
    EXPECT_EQ(lengths->auth, c.auth_len);
  }
  EXPECT_FALSE(KeyLengthsFor(static_cast<EncrAlg>(4), MacAlg::kNull).ok());
  EXPECT_FALSE(KeyLengthsFor(EncrAlg::kNull, static_cast<MacAlg>(3)).ok());
}

TEST(crypto_Derivation, RejectsBadArguments) {
  TransientCryptoProvider provider;
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(Bytes(16, 4));
  const Bytes rand(16, 5), salt13(13, 6);
  const Rfc3830TekContext context{1, 2, rand};
  EXPECT_EQ(DeriveSrtpMasterKeys(provider, PrfFunc::kMikey1, *key, context, 24, std::nullopt)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveSrtpMasterKeys(provider, PrfFunc::kMikey1, *key, context, 16,
                                 ByteSpan(salt13))
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveMessageKeys(provider, PrfFunc::kMikey1, *key, Direction::kInitial, 1,
                              std::nullopt, std::nullopt, EncrAlg::kAesCm128,
                              MacAlg::kHmacSha1_160)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveRfc3830MessageKeys(provider, PrfFunc::kMikey1, *key, 1, rand,
                                     static_cast<EncrAlg>(9), MacAlg::kNull)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(DeriveInitiatorDataAuthKey(provider, PrfFunc::kMikey1, *key, static_cast<MacAlg>(7))
                .error()
                .code(),
            StatusCode::kInvalidArgument);
  SecretKeyPtr empty = TransientCryptoProvider::MakeKey(ByteSpan());
  EXPECT_EQ(DeriveMpkKey(provider, PrfFunc::kMikey1, *empty, MpkKeyType::kMpki, rand)
                .error()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST(crypto_Derivation, NullAlgorithmsDeriveNoKeys) {
  TransientCryptoProvider provider;
  SecretKeyPtr key = TransientCryptoProvider::MakeKey(Bytes(16, 4));
  const Bytes rand(16, 5);
  auto keys = DeriveRfc3830MessageKeys(provider, PrfFunc::kMikey1, *key, 1, rand, EncrAlg::kNull,
                                       MacAlg::kNull);
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->encr_key.empty() && keys->salt_key.empty() && keys->auth_key.empty());
  auto vr = DeriveInitiatorDataAuthKey(provider, PrfFunc::kMikey1, *key, MacAlg::kNull);
  ASSERT_TRUE(vr.ok());
  EXPECT_TRUE(vr->empty());
}

}  // namespace
}  // namespace tkms::mikey::crypto
