// End-to-end: the API's bearer tokens (`auth`), on a real daemon over real
// HTTP, with touchpointctl; and what /healthz, which needs no token, leaves
// out without one.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <thread>

#include "child_process.h"
#include "core/clock.h"
#include "daemon_process.h"
#include "run_ctl.h"
#include "temp_dir.h"
#include "test_config.h"

namespace tp {
namespace {

using nlohmann::json;
using testing::DaemonProcess;
using ::testing::HasSubstr;
using ::testing::Not;

class ApiTokenTest : public ::testing::Test {
 protected:
  std::string Path(const std::string& name) const { return dir_.path() + "/" + name; }

  // One step due a second after a purchase, to `sinks` (the queue
  // "outbox" by default).
  static std::string Config(const std::string& sinks = "") {
    testing::TestConfig config;
    config.Top("auth: {token_file: api.token}").Step("1s", "soon");
    if (!sinks.empty()) config.Sinks(sinks);
    return config.Yaml();
  }

  DaemonProcess& Make(std::string_view config) {
    testing::WriteFile(Path("touchpoint.yaml"), config);
    daemon_ =
        std::make_unique<DaemonProcess>(Path("touchpoint.yaml"), Path("tp.db"), Path("daemon.log"));
    return *daemon_;
  }

  // Lin buys a box a minute ago: the status of the answer.
  static int BuyOne(DaemonProcess& d) {
    const std::string bought =
        FormatRfc3339(SystemClock().Now() - std::chrono::minutes(1), UtcZone());
    return d
        .Call("POST", "/v1/purchases",
              {{"order_id", "o1"},
               {"buyer_id", "lin"},
               {"product", "daily"},
               {"quantity", 1},
               {"amount", 20},
               {"purchased_at", bought}})
        .first;
  }

  testing::TempDir dir_;
  std::unique_ptr<DaemonProcess> daemon_;
};

TEST_F(ApiTokenTest, TheV1ApiNeedsABearerTokenWhenAuthIsConfigured) {
  const std::string first = "tok-0123456789abcdef", second = "tok-fedcba9876543210";
  testing::WriteFile(Path("api.token"), "# rotation: both work\n" + first + "\n" + second + "\n");
  DaemonProcess& d = Make(Config());
  ASSERT_TRUE(d.Start());

  auto call = [&](const std::string& target, const std::string& token) {
    auto client = HttpClient::Create(d.url());
    EXPECT_TRUE(client.ok());
    (*client)->set_bearer_token(token);
    auto r = (*client)->Request("GET", target);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : HttpResult{};
  };
  EXPECT_EQ(call("/healthz", "").status, 200);
  const HttpResult none = call("/v1/buyers/lin", "");
  EXPECT_EQ(none.status, 401);
  EXPECT_THAT(none.body, HasSubstr("needs an Authorization: Bearer token"));
  EXPECT_EQ(call("/v1/buyers/lin", "tok-0123456789abcdeX").status, 401);
  EXPECT_EQ(call("/v1/no-such-endpoint", "wrong").status, 401);  // nothing to probe
  EXPECT_EQ(call("/v1/buyers/lin", first).status, 404);          // in: an unknown buyer
  EXPECT_EQ(call("/v1/buyers/lin", second).status, 404);

  // touchpointctl: --token-file, or TOUCHPOINT_TOKEN.
  auto refused = testing::Ctl({"buyer", "--url", d.url(), "lin"});
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_THAT(refused.err, HasSubstr("needs an API token; pass --token-file FILE"));
  auto with_file =
      testing::Ctl({"buyer", "--url", d.url(), "--token-file", Path("api.token"), "lin"});
  EXPECT_THAT(with_file.err, HasSubstr("unknown buyer 'lin'"));
  ::setenv("TOUCHPOINT_TOKEN", second.c_str(), 1);
  auto with_env = testing::Ctl({"dead-letters", "list", "--url", d.url()});
  ::unsetenv("TOUCHPOINT_TOKEN");
  EXPECT_EQ(with_env.exit_code, 0) << with_env.err;
  EXPECT_THAT(with_env.out, HasSubstr("0 dead letters"));

  // The rotation ends: the first token is dropped and the daemon reloaded.
  testing::WriteFile(Path("api.token"), second + "\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(d.WaitForLog("reloaded "));
  EXPECT_EQ(call("/v1/buyers/lin", first).status, 401);
  EXPECT_EQ(call("/v1/buyers/lin", second).status, 404);
}

// Without the token, a body is not read: the 401 comes on the headers,
// before a byte of it is sent (a stranger's 32 MiB is not buffered).
TEST_F(ApiTokenTest, ARequestWithoutTheTokenIsRefusedBeforeItsBody) {
  testing::WriteFile(Path("api.token"), "tok-0123456789abcdef\n");
  DaemonProcess& d = Make(Config());
  ASSERT_TRUE(d.Start());
  const int fd = testing::RawConnect(d.address());
  ASSERT_GE(fd, 0);
  timeval tv{3, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  const std::string head =
      "POST /v1/purchases HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Content-Length: 30000000\r\n\r\n";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  ::shutdown(fd, SHUT_WR);  // no body at all
  const std::string answer = testing::ReadUntilClosed(fd);
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 401"));
  EXPECT_THAT(answer, HasSubstr("WWW-Authenticate: Bearer"));
  auto metrics = d.http().Request("GET", "/metrics");
  ASSERT_TRUE(metrics.ok());
  EXPECT_EQ(testing::Sample(metrics->body, "touchpoint_api_unauthorized_requests_total"), 1);
}

// Without `auth`, a page of another site that made its own name resolve to
// the daemon's address (DNS rebinding) is, to the browser, one origin with
// the daemon: /v1/ refuses its Host, reading and changing alike, until
// http.allowed_hosts names it (a reload).
TEST_F(ApiTokenTest, WithoutAuthV1AnswersOnlyTheDaemonsOwnHosts) {
  DaemonProcess& d = Make(testing::TestConfig().Step("1d", "later").Yaml());
  ASSERT_TRUE(d.Start());
  ASSERT_EQ(BuyOne(d), 200);
  const std::string page = "evil.example" + d.address().substr(d.address().rfind(':'));
  auto ask = [&](const std::string& method, const std::string& target) {
    return testing::RawExchange(d.address(), method + " " + target + " HTTP/1.1\r\nHost: " + page +
                                                 "\r\nOrigin: http://" + page +
                                                 "\r\nSec-Fetch-Site: same-origin\r\n"
                                                 "Content-Length: 0\r\nConnection: close\r\n\r\n");
  };
  const std::string read = ask("GET", "/v1/buyers/lin");
  EXPECT_THAT(read, ::testing::StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(read, HasSubstr("Host '" + page + "' is refused"));
  EXPECT_THAT(read, Not(HasSubstr("daily")));
  EXPECT_THAT(ask("POST", "/v1/buyers/lin/opt-out"), ::testing::StartsWith("HTTP/1.1 403"));
  EXPECT_EQ(d.Call("GET", "/v1/buyers/lin").second["opted_out"], false);
  // Behind a proxy that rewrites Host to the daemon's address and adds an
  // X-Forwarded-Host line of its own, the page's own line does not hide it.
  const std::string proxied = testing::RawExchange(
      d.address(), "GET /v1/buyers/lin HTTP/1.1\r\nHost: " + d.address() +
                       "\r\nX-Forwarded-Host: 127.0.0.1\r\nX-Forwarded-Host: " + page +
                       "\r\nConnection: close\r\n\r\n");
  EXPECT_THAT(proxied, ::testing::StartsWith("HTTP/1.1 403"));
  EXPECT_THAT(proxied, HasSubstr("Host '127.0.0.1, " + page + "' is refused"));
  // /healthz answers, with states and counts only.
  const std::string health = ask("GET", "/healthz");
  EXPECT_THAT(health, ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(health, HasSubstr("\"withheld\":\"the config's path, errors and reasons: ask by "
                                "an IP address, localhost or a name in http.allowed_hosts"));
  EXPECT_THAT(health, Not(HasSubstr(dir_.path())));
  EXPECT_THAT(d.Call("GET", "/healthz").second["config"].value("path", ""), HasSubstr(dir_.path()));

  testing::WriteFile(Path("touchpoint.yaml"), testing::TestConfig()
                                                  .Top("http: {allowed_hosts: [evil.example]}")
                                                  .Step("1d", "later")
                                                  .Yaml());
  d.Signal(SIGHUP);
  ASSERT_TRUE(d.WaitForLog("reloaded "));
  EXPECT_THAT(ask("POST", "/v1/buyers/lin/opt-out"), ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_EQ(d.Call("GET", "/v1/buyers/lin").second["opted_out"], true);
}

TEST_F(ApiTokenTest, AShortTokenIsAConfigErrorThatNeverEchoesIt) {
  testing::WriteFile(Path("api.token"), "hunter2\n");
  DaemonProcess& d = Make(Config());
  EXPECT_FALSE(d.Start());
  EXPECT_EQ(d.Wait(), 78);
  EXPECT_THAT(d.log(), HasSubstr("line 1 is not a token (at least 16 printable characters"));
  EXPECT_THAT(d.log(), Not(HasSubstr("hunter2")));
}

// /healthz stays open (load balancers and monitors probe it without a
// token), but with `auth` on it names no path, host or error to a request
// without a valid token: a failing webhook's error names its host and
// port, a failed reload's errors quote the file, a database's reason names
// its server. The states and counts stay.
TEST_F(ApiTokenTest, HealthzWithholdsPathsAndErrorsWithoutTheToken) {
  const std::string token = "tok-0123456789abcdef";
  testing::WriteFile(Path("api.token"), token + "\n");
  testing::WriteFile(Path("crm.secret"), "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n");
  const std::string hook =
      "127.0.0.1:" + std::to_string(testing::PortForLater());  // nobody listens
  DaemonProcess& d = Make(Config("  - {name: crm, type: webhook, url: \"http://" + hook +
                                 "/hook\", secret_file: crm.secret, retry: {initial: 1s}}\n"));
  ASSERT_TRUE(d.Start());
  auto health = [&](const std::string& bearer) {
    auto client = HttpClient::Create(d.url());
    EXPECT_TRUE(client.ok());
    (*client)->set_bearer_token(bearer);
    auto r = (*client)->Request("GET", "/healthz");
    EXPECT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r.ok() ? r->status : 0, 200);
    return r.ok() ? r->body : std::string();
  };
  d.http().set_bearer_token(token);
  ASSERT_EQ(BuyOne(d), 200);
  // The step fires at once; its delivery fails.
  json full;
  for (int i = 0; i < 2000; ++i) {
    full = json::parse(health(token));
    if (full["sinks"][0].contains("last_error")) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_THAT(full["sinks"][0].value("last_error", ""), HasSubstr(hook)) << full;
  testing::WriteFile(Path("touchpoint.yaml"), "version: 1\ntimezone: Mars/Olympus\n");
  d.Signal(SIGHUP);
  ASSERT_TRUE(d.WaitForLog("reload failed"));

  full = json::parse(health(token));
  EXPECT_EQ(full["status"], "degraded");
  EXPECT_EQ(full["config"]["path"], Path("touchpoint.yaml"));
  EXPECT_FALSE(full["config"]["last_reload"]["errors"].empty()) << full;
  EXPECT_FALSE(full.contains("withheld"));

  for (const std::string& bearer : {std::string(), std::string("tok-not-the-right-one")}) {
    const std::string body = health(bearer);
    EXPECT_THAT(body, Not(HasSubstr(dir_.path()))) << body;
    EXPECT_THAT(body, Not(HasSubstr(hook))) << body;
    EXPECT_THAT(body, Not(HasSubstr("Mars"))) << body;
    const json shown = json::parse(body);
    EXPECT_EQ(shown["status"], "degraded");
    EXPECT_EQ(shown["config"]["sha256"], full["config"]["sha256"]);
    EXPECT_EQ(shown["config"]["last_reload"]["ok"], false);
    EXPECT_FALSE(shown["config"]["last_reload"].contains("errors"));
    EXPECT_EQ(shown["sinks"][0]["name"], "crm");
    EXPECT_EQ(shown["sinks"][0]["state"], full["sinks"][0]["state"]);
    EXPECT_FALSE(shown["sinks"][0].contains("last_error"));
    EXPECT_THAT(shown.value("withheld", ""), HasSubstr("bearer token"));
  }
}

}  // namespace
}  // namespace tp
