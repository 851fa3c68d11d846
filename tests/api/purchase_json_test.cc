#include "api/purchase_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace tp {
namespace {

using ::testing::HasSubstr;

class PurchaseJsonTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Rules> rules_ = testing::MustLoad(testing::kBriefConfig);
};

TEST_F(PurchaseJsonTest, ParsesAnObjectWithCanonicalAttributes) {
  auto parsed = ParsePurchases(
      R"({"order_id":"o1","buyer_id":"b","product":"daily","quantity":2,"amount":240.5,
          "purchased_at":"2026-11-01T15:30:00+08:00","timezone":"Europe/Berlin",
          "attributes":{"z":1,"a":{"y":true,"b":null}}})",
      *rules_);
  ASSERT_FALSE(parsed.error) << parsed.error->error;
  ASSERT_EQ(parsed.items.size(), 1u);
  const Purchase& p = parsed.items[0];
  EXPECT_EQ(p.order_id, "o1");
  EXPECT_EQ(p.quantity, 2);
  EXPECT_EQ(p.amount, 240.5);
  EXPECT_EQ(p.timezone, "Europe/Berlin");
  EXPECT_EQ(p.purchased_at, testing::At("2026-11-01T07:30:00Z"));
  EXPECT_EQ(p.attributes, R"({"a":{"b":null,"y":true},"z":1})");
}

TEST_F(PurchaseJsonTest, NullOrEmptyTimezoneMeansTheDefaultAndEmptyAttributesNone) {
  auto parsed = ParsePurchases(
      R"([{"order_id":"o1","buyer_id":"b","product":"daily","quantity":1,"amount":0,
           "purchased_at":"2026-11-01T15:30:00Z","timezone":null,"attributes":{}},
          {"order_id":"o2","buyer_id":"b","product":"daily","quantity":1,"amount":0,
           "purchased_at":"2026-11-01T15:30:00Z","timezone":""}])",
      *rules_);
  ASSERT_FALSE(parsed.error);
  ASSERT_EQ(parsed.items.size(), 2u);
  EXPECT_EQ(parsed.items[0].timezone, "");
  EXPECT_EQ(parsed.items[0].attributes, "");
  EXPECT_EQ(parsed.items[1].timezone, "");
}

TEST_F(PurchaseJsonTest, ShapeErrorsHaveNoField) {
  for (const char* body : {"", "[]", "42", "\"x\"", "{\"a\":", "[1]"}) {
    auto parsed = ParsePurchases(body, *rules_);
    ASSERT_TRUE(parsed.error) << body;
    EXPECT_TRUE(parsed.items.empty());
  }
  auto parsed = ParsePurchases("{\"a\":", *rules_);
  EXPECT_THAT(parsed.error->error, HasSubstr("malformed JSON"));
  EXPECT_FALSE(parsed.error->index);
  parsed = ParsePurchases("[1]", *rules_);
  EXPECT_EQ(parsed.error->index, 0u);
  EXPECT_THAT(parsed.error->error, HasSubstr("must be a JSON object"));
}

TEST_F(PurchaseJsonTest, LimitsItemsAndIdLengthAndQuantityRange) {
  auto parsed =
      ParsePurchases(R"([{"order_id":"a"},{"order_id":"b"},{"order_id":"c"}])", *rules_, 2);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error, HasSubstr("too many purchases in one request: 3 (at most 2)"));

  const std::string long_id(kMaxIdLength + 1, 'x');
  parsed = ParsePurchases(R"({"order_id":")" + long_id + R"("})", *rules_);
  EXPECT_EQ(parsed.error->field, "order_id");
  EXPECT_THAT(parsed.error->error, HasSubstr("at most 256 bytes"));

  for (const char* q : {"0", "-1", "2147483648", "1.5", "18446744073709551615"}) {
    parsed = ParsePurchases(std::string(R"({"order_id":"o","buyer_id":"b","product":"daily",)") +
                                R"("quantity":)" + q +
                                R"(,"amount":1,"purchased_at":"2026-11-01T15:30:00Z"})",
                            *rules_);
    ASSERT_TRUE(parsed.error) << q;
    EXPECT_EQ(parsed.error->field, "quantity") << q;
  }
}

}  // namespace
}  // namespace tp
