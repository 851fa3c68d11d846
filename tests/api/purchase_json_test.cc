#include "api/purchase_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/json_parse.h"
#include "core/text.h"
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
  EXPECT_THAT(parsed.error->error, HasSubstr("too many purchases in one request (at most 2)"));

  const std::string long_id(kMaxIdBytes + 1, 'x');
  parsed = ParsePurchases(R"({"order_id":")" + long_id + R"("})", *rules_);
  EXPECT_EQ(parsed.error->field, "order_id");
  EXPECT_THAT(parsed.error->error, HasSubstr("at most 256 bytes"));

  for (const char* q : {"0", "-1", "1000001", "2147483648", "1.5", "18446744073709551615", "-1e400",
                        "1e400", "123456789012345678901234567890"}) {
    parsed = ParsePurchases(std::string(R"({"order_id":"o","buyer_id":"b","product":"daily",)") +
                                R"("quantity":)" + q +
                                R"(,"amount":1,"purchased_at":"2026-11-01T15:30:00Z"})",
                            *rules_);
    ASSERT_TRUE(parsed.error) << q;
    EXPECT_EQ(parsed.error->field, "quantity") << q;
  }
}

// A body with `field` set to the raw JSON `value`, the other fields valid.
std::string With(const std::string& field, const std::string& value) {
  std::map<std::string, std::string> fields = {
      {"order_id", R"("o1")"},   {"buyer_id", R"("b1")"},
      {"product", R"("daily")"}, {"quantity", "2"},
      {"amount", "240"},         {"purchased_at", R"("2026-11-01T15:30:00Z")"}};
  fields[field] = value;
  std::string body = "{";
  for (const auto& [k, v] : fields) body += (body.size() > 1 ? "," : "") + ("\"" + k + "\":" + v);
  return body + "}";
}

TEST_F(PurchaseJsonTest, NumbersBeyondTheDoubleRangeAre400WithTheField) {
  for (const auto& [field, value] :
       std::vector<std::pair<std::string, std::string>>{{"amount", "1e400"},
                                                        {"quantity", "-1e400"},
                                                        {"amount", std::string(400, '9')},
                                                        {"attributes", R"({"a":[1,2,1e999]})"}}) {
    auto parsed = ParsePurchases(With(field, value), *rules_);
    ASSERT_TRUE(parsed.error) << field << "=" << value;
    EXPECT_EQ(parsed.error->field, field) << value;
    EXPECT_EQ(parsed.error->index, 0u);
    EXPECT_THAT(parsed.error->error, HasSubstr("number out of range")) << parsed.error->error;
  }
  auto parsed = ParsePurchases(
      "[" + With("order_id", R"("a")") + "," + With("amount", "-1e309") + "]", *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->index, 1u);
  EXPECT_EQ(parsed.error->field, "amount");
  EXPECT_THAT(parsed.error->error, HasSubstr("[1].amount: a number out of range"));
}

TEST_F(PurchaseJsonTest, DeepNestingIsRefusedAt32Levels) {
  // 65,000 levels crashed the daemon (a recursive dump of the attributes).
  for (const std::size_t levels : {std::size_t{31}, std::size_t{65'000}}) {
    const std::string deep = std::string(levels, '[') + std::string(levels, ']');
    auto parsed = ParsePurchases(With("attributes", R"({"a":)" + deep + "}"), *rules_);
    ASSERT_TRUE(parsed.error) << levels;
    EXPECT_EQ(parsed.error->field, "attributes");
    EXPECT_THAT(parsed.error->error, HasSubstr("nested deeper than 32 levels"));
  }
  // 30 inside the attributes: 32 with the purchase and its attributes.
  const std::string ok = std::string(30, '[') + std::string(30, ']');
  auto parsed = ParsePurchases(With("attributes", R"({"a":)" + ok + "}"), *rules_);
  EXPECT_FALSE(parsed.error) << parsed.error->error;
  parsed = ParsePurchases(std::string(100'000, '['), *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error, HasSubstr("nested deeper"));
}

// A body's cost in memory is its values': the parse stops at the limits,
// before the document is built whole (a 32 MiB `[{},{},...]` was 11
// million objects, about a gigabyte).
TEST_F(PurchaseJsonTest, TooManyItemsOrValuesStopTheParse) {
  std::string many = "[{}";
  for (int i = 0; i < 20'000; ++i) many += ",{}";
  many += "]";
  auto parsed = ParsePurchases(many, *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error, HasSubstr("too many purchases in one request (at most 1000)"));

  std::string values = "[1";
  for (std::size_t i = 0; i < kMaxJsonValues; ++i) values += ",1";
  values += "]";
  auto attributes = ParsePurchases(With("attributes", R"({"a":)" + values + "}"), *rules_);
  ASSERT_TRUE(attributes.error);
  EXPECT_EQ(attributes.error->field, "attributes");
  EXPECT_THAT(attributes.error->error, HasSubstr("more than 1000000 values"));
  // The array and its numbers: exactly the limit is allowed.
  std::string exact = "[1";
  for (int i = 0; i + 2 < 1000; ++i) exact += ",1";
  exact += "]";
  EXPECT_FALSE(ParseJson(exact, JsonLimits{.max_values = 1000}).error);
  EXPECT_TRUE(
      ParseJson(exact.substr(0, exact.size() - 1) + ",1]", JsonLimits{.max_values = 1000}).error);
}

TEST_F(PurchaseJsonTest, DuplicateKeysAndNulBytesAreRefused) {
  auto parsed = ParsePurchases(
      R"({"order_id":"o1","buyer_id":"b1","product":"daily","quantity":2,"quantity":3,)"
      R"("amount":1,"purchased_at":"2026-11-01T15:30:00Z"})",
      *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->field, "quantity");
  EXPECT_THAT(parsed.error->error, HasSubstr("duplicate key 'quantity'"));
  parsed = ParsePurchases(With("attributes", R"({"k":1,"k":2})"), *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->field, "attributes");
  EXPECT_THAT(parsed.error->error, HasSubstr("attributes.k: duplicate key 'k'"));

  std::string body = With("order_id", R"("o1")");
  body += std::string("\0", 1) + "trailing garbage";
  parsed = ParsePurchases(body, *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error, HasSubstr("NUL byte at offset"));
  parsed = ParsePurchases(With("order_id", R"("o1")") + " {}", *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error, HasSubstr("malformed JSON"));
}

TEST_F(PurchaseJsonTest, IdsAreUtf8WithoutControlCharacters) {
  for (const char* id : {R"("a\u0000b")", R"("tab\there")", R"("\u0085")"}) {
    auto parsed = ParsePurchases(With("buyer_id", id), *rules_);
    ASSERT_TRUE(parsed.error) << id;
    EXPECT_EQ(parsed.error->field, "buyer_id") << id;
    EXPECT_THAT(parsed.error->error, HasSubstr("must not hold control characters"));
  }
  // Raw bytes that are not UTF-8 are not JSON.
  auto parsed = ParsePurchases(With("buyer_id", "\"\xff\""), *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error, HasSubstr("ill-formed UTF-8"));
  parsed = ParsePurchases(With("buyer_id", R"("lín 林")"), *rules_);
  EXPECT_FALSE(parsed.error) << parsed.error->error;
}

TEST_F(PurchaseJsonTest, DatesAndQuantitiesStayWhereTheArithmeticHolds) {
  for (const char* at : {R"("1999-12-31T23:59:59Z")", R"("2100-01-01T00:00:00Z")",
                         R"("9999-05-15T10:00:00+08:00")", R"("1900-01-01T00:00:00Z")"}) {
    auto parsed = ParsePurchases(With("purchased_at", at), *rules_);
    ASSERT_TRUE(parsed.error) << at;
    EXPECT_EQ(parsed.error->field, "purchased_at");
    EXPECT_THAT(parsed.error->error, HasSubstr("from 2000-01-01T00:00:00Z"));
  }
  EXPECT_FALSE(ParsePurchases(With("purchased_at", R"("2099-12-31T23:59:59Z")"), *rules_).error);
  // 143165577 boxes of 15 days once wrapped past 2^31 days.
  auto parsed = ParsePurchases(With("quantity", "143165577"), *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->field, "quantity");
  // yearly lenses last 365 days a box: 100 boxes is 36,500 days, the most.
  parsed = ParsePurchases(With("quantity", "101"), *rules_);
  EXPECT_FALSE(parsed.error);
  std::string yearly = With("quantity", "101");
  yearly.replace(yearly.find("\"daily\""), 7, "\"yearly\"");
  parsed = ParsePurchases(yearly, *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error, HasSubstr("lasts 36865 days"));
  parsed = ParsePurchases(With("amount", "1e13"), *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_THAT(parsed.error->error,
              HasSubstr("amount must be a number from 0 to 1e12, got 10000000000000"));
}

TEST_F(PurchaseJsonTest, AnOrderTwiceInOneRequestMustSayTheSame) {
  const std::string a = With("order_id", R"("o1")");
  auto parsed = ParsePurchases("[" + a + "," + a + "]", *rules_);
  EXPECT_FALSE(parsed.error);
  EXPECT_EQ(parsed.items.size(), 2u);
  parsed = ParsePurchases("[" + a + "," + With("amount", "250") + "]", *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->index, 1u);
  EXPECT_EQ(parsed.error->field, "amount");
  EXPECT_THAT(parsed.error->error, HasSubstr("order_id 'o1' is also item 0 of this request"));
  // The config's default zone spelt out is the same timezone.
  parsed = ParsePurchases("[" + a + "," + With("timezone", R"("Asia/Shanghai")") + "]", *rules_);
  EXPECT_FALSE(parsed.error) << parsed.error->error;
}

TEST_F(PurchaseJsonTest, TypeErrorsShowTheValue) {
  auto parsed = ParsePurchases(With("quantity", R"("zero")"), *rules_);
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->error, R"(quantity must be an integer, got "zero")");
  parsed = ParsePurchases(With("product", R"("monthly")"), *rules_);
  EXPECT_EQ(parsed.error->error, "unknown product 'monthly' (the rules have daily, yearly)");
}

}  // namespace
}  // namespace tp
