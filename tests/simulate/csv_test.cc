#include "simulate/csv.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace tp {
namespace {

using ::testing::ElementsAre;

TEST(CsvTest, SplitsPlainAndQuotedFields) {
  std::vector<std::string> f;
  EXPECT_EQ(SplitCsvLine("a,b,,d", f), std::nullopt);
  EXPECT_THAT(f, ElementsAre("a", "b", "", "d"));
  EXPECT_EQ(SplitCsvLine(R"("x,y","say ""hi""",z,)", f), std::nullopt);
  EXPECT_THAT(f, ElementsAre("x,y", "say \"hi\"", "z", ""));
  EXPECT_EQ(SplitCsvLine("", f), std::nullopt);
  EXPECT_THAT(f, ElementsAre(""));
}

TEST(CsvTest, ReportsBrokenQuoting) {
  std::vector<std::string> f;
  EXPECT_EQ(SplitCsvLine(R"(a,"b)", f), "unterminated quoted field");
  EXPECT_EQ(SplitCsvLine(R"(a,"b"c)", f), "unexpected text after a closing quote");
  EXPECT_EQ(SplitCsvLine(R"(a,b"c)", f), "a quote inside an unquoted field");
}

class RowParserTest : public ::testing::Test {
 protected:
  std::shared_ptr<const Rules> rules_ = testing::MustLoad(testing::kBriefConfig);
  std::vector<std::string> header_ = {"order_id", "buyer_id",     "product", "quantity",
                                      "amount",   "purchased_at", "timezone"};
  std::optional<std::string> ParseRow(std::vector<std::string> row, Purchase& out) {
    auto parser = PurchaseRowParser::FromHeader(header_, *rules_);
    EXPECT_TRUE(parser.ok());
    return parser->Parse(row, out);
  }
};

TEST_F(RowParserTest, ParsesAValidRow) {
  Purchase p;
  EXPECT_EQ(
      ParseRow({"b-5", "ola", "daily", "2", "240.5", "2026-03-27T08:00:00+01:00", "Europe/Berlin"},
               p),
      std::nullopt);
  EXPECT_EQ(p.order_id, "b-5");
  EXPECT_EQ(p.quantity, 2);
  EXPECT_EQ(p.amount, 240.5);
  EXPECT_EQ(p.purchased_at, testing::At("2026-03-27T07:00:00Z"));
  EXPECT_EQ(p.timezone, "Europe/Berlin");
}

TEST_F(RowParserTest, NamesTheBadField) {
  Purchase p;
  const std::string t = "2026-03-27T08:00:00+01:00";
  EXPECT_EQ(ParseRow({"", "b", "daily", "1", "1", t, ""}, p),
            "field 'order_id': order_id must not be empty");
  EXPECT_EQ(ParseRow({"o", "", "daily", "1", "1", t, ""}, p),
            "field 'buyer_id': buyer_id must not be empty");
  EXPECT_EQ(ParseRow({"o", "b", "weekly", "1", "1", t, ""}, p),
            "field 'product': unknown product 'weekly' (the rules have daily, yearly)");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "0", "1", t, ""}, p),
            "field 'quantity': quantity must be an integer from 1 to 1000000, got 0");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1.5", "1", t, ""}, p),
            "field 'quantity': quantity must be an integer from 1 to 1000000, got '1.5'");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "-3", t, ""}, p),
            "field 'amount': amount must be a number from 0 to 1e12, got -3");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1e400", t, ""}, p),
            "field 'amount': amount must be a number from 0 to 1e12, got '1e400'");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1", "2026-03-27 08:00", ""}, p),
            "field 'purchased_at': purchased_at must be an RFC 3339 time with an offset, like "
            "2026-11-01T15:30:00+08:00, got '2026-03-27 08:00'");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1", t, "Berlin"}, p),
            "field 'timezone': unknown time zone 'Berlin' (use an IANA name like Asia/Shanghai)");
  // The API's bounds, so that a file that simulates also imports.
  EXPECT_EQ(ParseRow({std::string(300, 'o'), "b", "daily", "1", "1", t, ""}, p),
            "field 'order_id': order_id must be at most 256 bytes, got 300");
  EXPECT_THAT(*ParseRow({"o", "b\xff", "daily", "1", "1", t, ""}, p),
              ::testing::HasSubstr("buyer_id must be UTF-8 (byte 1 is not)"));
  EXPECT_THAT(*ParseRow({"o", "b", "daily", "1", "1", "1900-01-01T00:00:00Z", ""}, p),
              ::testing::HasSubstr("purchased_at must be from 2000-01-01T00:00:00Z"));
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1", t}, p), "expected 7 fields, got 6");
}

TEST_F(RowParserTest, HeaderInAnyOrderWithOptionalTimezone) {
  Purchase p;
  auto parser = PurchaseRowParser::FromHeader(
      {"buyer_id", "order_id", "purchased_at", "product", "quantity", "amount"}, *rules_);
  ASSERT_TRUE(parser.ok());
  EXPECT_EQ(parser->Parse({"b", "o", "2026-03-27T08:00:00Z", "yearly", "1", "900"}, p),
            std::nullopt);
  EXPECT_EQ(p.order_id, "o");
  EXPECT_EQ(p.timezone, "");
  EXPECT_EQ(PurchaseRowParser::FromHeader({"order_id", "buyer_id"}, *rules_).status().message(),
            "the header lacks column 'product'");
  EXPECT_EQ(PurchaseRowParser::FromHeader({"order_id", "order_id"}, *rules_).status().message(),
            "column 'order_id' appears twice in the header");
  EXPECT_EQ(PurchaseRowParser::FromHeader({"order", "buyer_id"}, *rules_).status().message(),
            "unknown column 'order' in the header");
}

TEST_F(RowParserTest, AttributesAreAnOptionalJsonObjectKeptCanonical) {
  header_.push_back("attributes");
  Purchase p;
  const std::string t = "2026-03-27T08:00:00+01:00";
  EXPECT_EQ(
      ParseRow({"o", "b", "daily", "1", "1", t, "", R"({ "style": "natural", "a": [1] })"}, p),
      std::nullopt);
  EXPECT_EQ(p.attributes, R"({"a":[1],"style":"natural"})");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1", t, "", ""}, p), std::nullopt);
  EXPECT_EQ(p.attributes, "");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1", t, "", "{}"}, p), std::nullopt);
  EXPECT_EQ(p.attributes, "");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1", t, "", "null"}, p), std::nullopt);
  EXPECT_EQ(p.attributes, "");
  EXPECT_EQ(ParseRow({"o", "b", "daily", "1", "1", t, "", "[1]"}, p),
            "field 'attributes': attributes must be a JSON object, like {\"style\":\"natural\"}, "
            "got '[1]'");
  EXPECT_THAT(*ParseRow({"o", "b", "daily", "1", "1", t, "", R"({"a":1,"a":2})"}, p),
              ::testing::HasSubstr("duplicate key 'a'"));
  EXPECT_THAT(
      *ParseRow({"o", "b", "daily", "1", "1", t, "", "{\"a\":\"" + std::string(70000, 'x') + "\"}"},
                p),
      ::testing::HasSubstr("field 'attributes': attributes must be at most"));
}

}  // namespace
}  // namespace tp

// A file that fails to read (here EIO: /proc/self/mem at address 0 is not
// mapped) ends early with the system's reason; libstdc++'s filebuf throws
// there, which once crashed touchpointctl.
TEST(CsvLineReaderTest, AReadErrorEndsTheFileWithTheReason) {
  tp::CsvLineReader reader("/proc/self/mem");
  ASSERT_EQ(reader.open_error(), "");
  std::string line;
  EXPECT_EQ(reader.Next(line), tp::CsvLineReader::Read::kEnd);
  EXPECT_EQ(line, "");
  EXPECT_EQ(reader.read_error(), "Input/output error");
}
