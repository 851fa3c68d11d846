// Webhook signing, the retry schedule, Retry-After and sink URLs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "core/url.h"
#include "delivery/retry.h"
#include "delivery/signature.h"
#include "harness.h"

namespace tp {
namespace {

using testing::At;
using ::testing::HasSubstr;

TEST(SignatureTest, MatchesTheStandardWebhooksReferenceVector) {
  // The example in the Standard Webhooks specification.
  auto key = DecodeWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
  ASSERT_TRUE(key.has_value());
  const std::vector<std::string> keys{*key};
  EXPECT_EQ(
      SignWebhook("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, R"({"test": 2432232314})", keys),
      "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

TEST(SignatureTest, TwoSecretsDuringRotationGiveTwoSignatures) {
  const std::vector<std::string> keys{
      *DecodeWebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
      *DecodeWebhookSecret("c2Vjb25kIHNlY3JldA==")};
  const std::string header = SignWebhook("id", 1, "{}", keys);
  const auto space = header.find(' ');
  ASSERT_NE(space, std::string::npos);
  EXPECT_EQ(header.substr(0, space), SignWebhook("id", 1, "{}", std::span(keys).first(1)));
  EXPECT_EQ(header.substr(space + 1), SignWebhook("id", 1, "{}", std::span(keys).last(1)));
  // A new timestamp is a new signature.
  EXPECT_NE(SignWebhook("id", 2, "{}", keys), header);
}

TEST(SignatureTest, Base64RoundTripsAndRejectsGarbage) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    EXPECT_EQ(Base64Decode(Base64Encode(s)), s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_FALSE(Base64Decode("Zm9v!mFy").has_value());
  EXPECT_FALSE(Base64Decode("Zm9").has_value());
  EXPECT_FALSE(DecodeWebhookSecret("whsec_").has_value());
  EXPECT_FALSE(DecodeWebhookSecret("whsec_not base64").has_value());
}

TEST(RetryTest, JudgesStatusesAsTheBriefSays) {
  for (int s : {200, 201, 204, 299}) EXPECT_EQ(Judge(s), Verdict::kDelivered) << s;
  for (int s : {0, 408, 429, 500, 502, 503, 504}) EXPECT_EQ(Judge(s), Verdict::kRetry) << s;
  for (int s : {301, 400, 401, 403, 404, 410, 422}) EXPECT_EQ(Judge(s), Verdict::kDeadLetter) << s;
}

TEST(RetryTest, BackoffDoublesToTheCapWithinQuarterJitter) {
  RetryPolicy p;
  p.initial = Millis(1000);
  p.max_delay = Millis(10'000);
  std::mt19937_64 rng(42);
  const std::int64_t base[] = {1000, 2000, 4000, 8000, 10'000, 10'000};
  for (int attempt = 1; attempt <= 6; ++attempt) {
    for (int i = 0; i < 200; ++i) {
      const auto d = Backoff(p, attempt, rng).count();
      EXPECT_GE(d, base[attempt - 1] * 3 / 4) << attempt;
      EXPECT_LE(d, base[attempt - 1] * 5 / 4) << attempt;
    }
  }
  // A huge attempt count does not overflow.
  EXPECT_LE(Backoff(p, 10'000, rng).count(), 12'500);
}

TEST(RetryTest, RetryAfterInSecondsOrAsAnHttpDate) {
  const Instant now = At("2026-11-23T10:00:00Z");
  EXPECT_EQ(ParseRetryAfter("120", now), Millis(120'000));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now), Millis(0));
  EXPECT_EQ(ParseRetryAfter("Mon, 23 Nov 2026 10:00:30 GMT", now), Millis(30'000));
  EXPECT_EQ(ParseRetryAfter("Mon, 23 Nov 2026 09:00:00 GMT", now), Millis(0));  // past
  EXPECT_FALSE(ParseRetryAfter("soon", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("12s", now).has_value());
  EXPECT_FALSE(ParseRetryAfter("", now).has_value());
}

TEST(UrlTest, ParsesWebhookAndRedisUrls) {
  auto u = ParseHttpUrl("https://CRM.example:8443/hooks/tp?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "CRM.example");
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/hooks/tp?x=1");
  EXPECT_EQ(u->HostHeader(), "CRM.example:8443");
  u = ParseHttpUrl("http://[::1]");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->Authority(), "[::1]:80");
  EXPECT_THAT(ParseHttpUrl("ftp://x/").status().message(), HasSubstr("http:// or https://"));
  EXPECT_THAT(ParseHttpUrl("http://x:0/").status().message(), HasSubstr("port"));
  EXPECT_THAT(ParseHttpUrl("http://u:p@x/").status().message(), HasSubstr("credentials"));
  EXPECT_THAT(ParseHttpUrl("http:///x").status().message(), HasSubstr("no host"));

  auto r = ParseRedisUrl("redis://:pw@127.0.0.1:6380/2");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->host, "127.0.0.1");
  EXPECT_EQ(r->port, 6380);
  EXPECT_EQ(r->password, "pw");
  EXPECT_EQ(r->database, 2);
  r = ParseRedisUrl("redis://cache");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->port, 6379);
  EXPECT_EQ(r->database, 0);
  EXPECT_THAT(ParseRedisUrl("redis://h/x").status().message(), HasSubstr("number"));
  EXPECT_THAT(ParseRedisUrl("http://h").status().message(), HasSubstr("redis://"));
}

// A URL a message quotes shows no password, even one holding '/' or '@'
// that the parser could not make sense of.
TEST(UrlTest, RedactedUrlHidesThePassword) {
  EXPECT_EQ(RedactedUrl("redis://:s3cr/et@redis.internal:6379/0"),
            "redis://:***@redis.internal:6379/0");
  EXPECT_EQ(RedactedUrl("redis://app:p@ss/w@h/cache"), "redis://app:***@h/cache");
  EXPECT_EQ(RedactedUrl("redis://s3cret@h/x"), "redis://***@h/x");  // no ':': the password
  EXPECT_EQ(RedactedUrl("redis://h:6379/x"), "redis://h:6379/x");
  EXPECT_EQ(RedactedUrl("https://u:p/w@h/x"), "https://u:***@h/x");
  EXPECT_EQ(RedactedUrl(":s3cret@redis.internal:6379"), ":***@redis.internal:6379");
  EXPECT_EQ(RedactedUrl("http://x/a?b=c"), "http://x/a?b=c");
  EXPECT_EQ(RedactedUrl("http://x/a?mail=b@c"), "http://***@c");  // less shown, never more
}

}  // namespace
}  // namespace tp
