// The config loader's sinks: webhook and Redis keys, secrets, TLS and CA
// files, and the errors that name them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "config/loader.h"
#include "harness.h"
#include "minimal_config.h"
#include "temp_dir.h"

namespace tp {
namespace {

using testing::ConfigErrors;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kMinimal;
using ::testing::Not;

TEST(LoaderTest, WebhookAndRedisSinks) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/crm.secret")
      << "# rotated 2026-11\nwhsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n\n  c2Vjb25kIHNlY3JldA==  \n";
  const std::string yaml = R"(version: 1
products:
  daily: {supply_days: 15}
sinks:
  - {name: outbox, type: queue}
  - name: crm
    type: webhook
    url: "https://crm.example/hooks"
    secret_file: crm.secret
    timeout: 5s
    concurrency: 4
    retry: {initial: 30s, max_delay: 2h, max_attempts: 12}
  - {name: events, type: redis, url: "redis://cache:6380/1", stream: tp, maxlen: 100000}
  - {name: plain, type: redis}
cadences:
  - name: trust
    sinks: [crm]
    steps:
      - {after: 1d, topic: hello}
)";
  // secret_file is relative to the config file.
  LoadResult r = LoadRulesString(yaml, dir.path() + "/touchpoint.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  ASSERT_EQ(r.rules->sinks.size(), 4u);
  const Sink& crm = r.rules->sinks[1];
  EXPECT_EQ(crm.type, Sink::Type::kWebhook);
  EXPECT_EQ(crm.secret_file, dir.path() + "/crm.secret");
  ASSERT_EQ(crm.secrets.size(), 2u);
  EXPECT_EQ(crm.secrets[1], "second secret");
  EXPECT_EQ(crm.timeout, Millis(5000));
  EXPECT_EQ(crm.concurrency, 4);
  EXPECT_EQ(crm.retry.initial, Millis(30'000));
  EXPECT_EQ(crm.retry.max_delay, Millis(7'200'000));
  EXPECT_EQ(crm.retry.max_attempts, 12);
  EXPECT_TRUE(crm.tls_verify);
  const Sink& events = r.rules->sinks[2];
  EXPECT_EQ(events.type, Sink::Type::kRedis);
  EXPECT_EQ(events.stream, "tp");
  EXPECT_EQ(events.maxlen, 100000);
  EXPECT_EQ(r.rules->sinks[3].url, "redis://127.0.0.1:6379/0");
  EXPECT_EQ(r.rules->sinks[3].stream, "touchpoints");
  EXPECT_FALSE(r.rules->sinks[3].maxlen.has_value());
  EXPECT_THAT(r.rules->cadences[0].sinks, ElementsAre(1));
}

// TLS settings on a plain http:// webhook did nothing: an error at each.
TEST(LoaderTest, TlsSettingsOnAPlainHttpUrlAreAnError) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/crm.secret") << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
  const std::string config = R"(version: 1
products:
  daily: {supply_days: 15}
sinks:
  - {name: crm, type: webhook, url: "http://crm.example/h", secret_file: crm.secret,
     tls_verify: false, ca_file: none.pem}
cadences:
  - name: trust
    steps:
      - {after: 1d, topic: hello}
)";
  LoadResult r = LoadRulesString(config, dir.path() + "/t.yaml");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> messages;
  for (const auto& e : r.errors) messages.push_back(e.ToString());
  EXPECT_THAT(messages, ::testing::Contains(HasSubstr(
                            "t.yaml:6:18: error: tls_verify applies to an https:// url; this "
                            "sink's is http://, whose events go unencrypted")));
  EXPECT_THAT(messages, ::testing::Contains(HasSubstr("ca_file applies to an https:// url")));
  std::string https = config;
  https.replace(https.find("http://"), 7, "https://");
  std::ofstream(dir.path() + "/none.pem");  // (empty: its own error)
  r = LoadRulesString(https, dir.path() + "/t.yaml");
  for (const auto& e : r.errors) {
    EXPECT_THAT(e.message, Not(HasSubstr("applies to an https:// url"))) << e.ToString();
  }
}

// A CA file is read at each load: PEM certificates, or an error at its key
// (a secret or a directory given by mistake was accepted, and the daemon
// then failed to start with no FILE:LINE).
TEST(LoaderTest, ACaFileMustHoldPemCertificates) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/crm.secret") << "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n";
  // A real certificate (a self-signed P-256 CA, valid until 2126), twice:
  // a bundle.
  const std::string cert =
      "-----BEGIN CERTIFICATE-----\n"
      "MIIBezCCASGgAwIBAgIUWHZujJHzQlFSYqKmVwA/C7iYAeowCgYIKoZIzj0EAwIw\n"
      "EjEQMA4GA1UEAwwHdGVzdC1jYTAgFw0yNjEyMDcxODA4NDNaGA8yMTI2MTExMzE4\n"
      "MDg0M1owEjEQMA4GA1UEAwwHdGVzdC1jYTBZMBMGByqGSM49AgEGCCqGSM49AwEH\n"
      "A0IABBWwZXs4ceCNhSBZ1/6QznxRQHUClubt9rVDP/iRE0GOZ4S18K8fjcbJyoOU\n"
      "q/EDbR8g8bG2TBIegiMsyJ3NtE2jUzBRMB0GA1UdDgQWBBQv41OhEXMpQHSwyV0a\n"
      "BexijgJG7zAfBgNVHSMEGDAWgBQv41OhEXMpQHSwyV0aBexijgJG7zAPBgNVHRMB\n"
      "Af8EBTADAQH/MAoGCCqGSM49BAMCA0gAMEUCIEpuYRTlmOG2NH7bvjjV7okuEwsS\n"
      "eopURuuf/ssbxtPeAiEAhdEtsxFh9Ke6DA6knt1lM8oxxDTM3DMWH4yAUODNB08=\n"
      "-----END CERTIFICATE-----\n";
  const std::string pem = "# our CAs\n" + cert + cert;
  std::ofstream(dir.path() + "/ca.pem") << pem;
  std::ofstream(dir.path() + "/damaged.pem")
      << cert << "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
  std::filesystem::create_directory(dir.path() + "/certs");
  ASSERT_EQ(::mkfifo((dir.path() + "/fifo").c_str(), 0600), 0);
  const auto with = [&](const std::string& ca_file) {
    return R"(version: 1
products:
  daily: {supply_days: 15}
sinks:
  - {name: crm, type: webhook, url: "https://crm.example/h", secret_file: crm.secret, ca_file: )" +
           ca_file + R"(}
cadences:
  - name: trust
    steps:
      - {after: 1d, topic: hello}
)";
  };
  LoadResult r = LoadRulesString(with("ca.pem"), dir.path() + "/t.yaml");
  ASSERT_TRUE(r.ok()) << r.errors.front().ToString();
  EXPECT_EQ(r.rules->sinks[0].ca_pem, pem);
  for (const auto& [ca_file, error] :
       {std::pair{"crm.secret", "holds no PEM certificate"},
        std::pair{"damaged.pem", "certificate 2 cannot be read"},
        std::pair{"certs", "is not a regular file"}, std::pair{"fifo", "is not a regular file"},
        std::pair{"none.pem", "cannot read ca_file"}}) {
    r = LoadRulesString(with(ca_file), dir.path() + "/t.yaml");
    ASSERT_FALSE(r.ok()) << ca_file;
    EXPECT_EQ(r.errors.front().line, 5) << ca_file;
    EXPECT_THAT(r.errors.front().message, HasSubstr(error)) << ca_file;
  }
}

TEST(LoaderTest, SinkErrorsNameTheKey) {
  testing::TempDir dir;
  std::ofstream(dir.path() + "/bad.secret") << "whsec_!!!\n";
  std::ofstream(dir.path() + "/empty.secret") << "# nothing yet\n";
  const std::string yaml = R"(version: 1
products:
  daily: {supply_days: 15}
sinks:
  - {name: a, type: webhook, url: "ftp://x", secret_file: missing.secret}
  - {name: b, type: webhook, url: "http://x", secret_file: bad.secret, stream: s}
  - {name: c, type: webhook, url: "http://x", secret_file: empty.secret, retry: {initial: 2h, max_delay: 1h}}
  - {name: d, type: redis, url: "redis://h/x", secret_file: s, timeout: 1d}
  - {name: e, type: queue, url: "http://x"}
  - {name: f, type: webhook}
cadences:
  - name: trust
    steps:
      - {after: 1d, topic: hello}
)";
  LoadResult r = LoadRulesString(yaml, dir.path() + "/t.yaml");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> errors;
  for (const auto& e : r.errors) {
    errors.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + " " + e.message);
  }
  EXPECT_THAT(errors,
              ElementsAre("5:35 url 'ftp://x' must start with http:// or https://",
                          "5:59 cannot read secret_file '" + dir.path() +
                              "/missing.secret': No such file or directory",
                          "6:60 secret_file '" + dir.path() +
                              "/bad.secret' line 1 is not a whsec_<base64> secret",
                          "6:80 key 'stream' does not apply to a webhook sink",
                          "7:60 secret_file '" + dir.path() + "/empty.secret' holds no secret",
                          "7:106 retry max_delay must be at least retry initial",
                          "8:33 url 'redis://h/x' the database after '/' must be a number, like "
                          "redis://host:6379/0",
                          "8:61 key 'secret_file' does not apply to a redis sink",
                          "8:73 timeout must be a positive number of s, m or h",
                          "9:33 key 'url' does not apply to a queue sink",
                          "10:5 missing required key 'url' in sink 'f'",
                          "10:5 missing required key 'secret_file' in sink 'f'"));
}

// A redis URL the loader refuses is quoted without its password.
TEST(LoaderTest, ARefusedRedisUrlIsQuotedWithoutItsPassword) {
  const auto errors = ConfigErrors(R"(version: 1
products:
  daily: {supply_days: 15}
sinks:
  - {name: r, type: redis, url: "redis://:s3cr/et@redis.internal:6379/0"}
cadences:
  - name: trust
    steps:
      - {after: 1d, topic: hello}
)");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], HasSubstr("url 'redis://:***@redis.internal:6379/0'"));
  EXPECT_THAT(errors[0], Not(HasSubstr("s3cr")));
}

}  // namespace
}  // namespace tp
