// The names the keystore reserves and reports (firmware/keystore/key_info.h):
// ticket key labels and ids, usage names.
#include <gtest/gtest.h>

#include "firmware/keystore/key_info.h"

namespace tkms::keystore {
namespace {

TEST(keystore_KeyNames, TicketKeyNames) {
  EXPECT_EQ(TicketKeyLabel(7), "tkms-ticket-7");
  EXPECT_EQ(TicketKeyId(0x01020304), (Bytes{0x01, 0x02, 0x03, 0x04}));
  EXPECT_EQ(TicketKeySelector(4294967295u).label, "tkms-ticket-4294967295");
}

TEST(keystore_KeyNames, TicketKeyLabelsParseStrictly) {
  EXPECT_EQ(ParseTicketKeyLabel("tkms-ticket-7"), 7u);
  EXPECT_EQ(ParseTicketKeyLabel("tkms-ticket-4294967295"), 4294967295u);
  for (const char* bad : {"tkms-ticket-", "tkms-ticket-07", "tkms-ticket-4294967296", "tkms-ticket-1x",
                          "tkms-ticket--1", "ticket-1", "tkms-counter-key"}) {
    EXPECT_FALSE(ParseTicketKeyLabel(bad).has_value()) << bad;
  }
}

TEST(keystore_KeyNames, UsageNames) {
  EXPECT_EQ(KeyUsageName(KeyUsage::kUserPsk), "user-psk");
  EXPECT_EQ(KeyUsageName(KeyUsage::kProvisioningCounter), "provisioning-counter");
  EXPECT_EQ(std::string(kCounterKeyLabel), "tkms-counter-key");
}

}  // namespace
}  // namespace tkms::keystore
