// A buyer's routes in-process: the timeline from a fake ReportStore; opt-out
// and opt-in handed to what records them (the daemon's ingest batcher:
// tests/daemon/ingest_batcher_test.cc writes them).
#include "api/buyer_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "api/route_test.h"

namespace tp {
namespace {

class FakeReports final : public ReportStore {
 public:
  using ReportStore::GetBuyer;
  StatusOr<std::optional<BuyerReport>> GetBuyer(std::string_view buyer_id,
                                                std::int64_t last_purchases) override {
    if (!fail.ok()) return fail;
    asked.push_back(last_purchases);
    for (const BuyerReport& r : buyers) {
      if (r.buyer_id == buyer_id) return std::optional<BuyerReport>(r);
    }
    return std::optional<BuyerReport>();
  }
  StatusOr<std::int64_t> PendingCount() override { return 2; }

  std::vector<BuyerReport> buyers;
  Status fail = Status::Ok();
  std::vector<std::int64_t> asked;  // each call's last_purchases
};

class BuyerRoutesTest : public testing::RouteTest {
 protected:
  // A touchpoint of order o1's trust cadence, in Shanghai.
  static TouchpointRecord Touchpoint(std::string id, std::string step, std::string topic,
                                     std::string tier) {
    TouchpointRecord t;
    t.id = std::move(id);
    t.order_id = "o1";
    t.cadence = "trust";
    t.step = std::move(step);
    t.topic = std::move(topic);
    t.tier = std::move(tier);
    t.product = "daily";
    t.zone = "Asia/Shanghai";
    return t;
  }

  BuyerRoutesTest() {
    routes_.AddTo(router_);
    using testing::At;
    BuyerReport lin;
    lin.buyer_id = "lin";
    lin.tier = "novice";
    Purchase p{"o1", "lin", "daily", 2, 240, At("2026-10-31T20:00:00+08:00"), "Asia/Shanghai"};
    p.attributes = R"({"style":"natural"})";
    lin.purchases.push_back({p, "Asia/Shanghai", "novice", At("2026-10-31T12:00:05Z")});
    TouchpointRecord fired = Touchpoint("tp-1", "s0", "how-to-wear", "novice");
    fired.due_at = fired.next_at = At("2026-11-01T20:00:00+08:00");
    fired.fire_at = fired.due_at;
    fired.state = TouchpointState::kFired;
    fired.history = {{At("2026-10-31T12:00:05Z"), TouchpointState::kPending, "planned"},
                     {At("2026-11-01T12:00:00Z"), TouchpointState::kFired, "queued on outbox"}};
    TouchpointRecord deferred = Touchpoint("tp-2", "s2", "comfort-check", "");
    deferred.due_at = At("2026-11-03T20:00:00+08:00");
    deferred.next_at = At("2026-11-04T09:00:00+08:00");
    deferred.history = {
        {At("2026-10-31T12:00:05Z"), TouchpointState::kPending, "planned"},
        {At("2026-11-03T12:00:00Z"), TouchpointState::kPending, "frequency cap: 2 per day"}};
    TouchpointRecord waiting = deferred;
    waiting.id = "tp-3";
    waiting.history.resize(1);
    waiting.next_at = waiting.due_at;
    TouchpointRecord cancelled = waiting;
    cancelled.id = "tp-4";
    cancelled.state = TouchpointState::kCancelled;
    cancelled.reason = "repurchase o2";
    lin.touchpoints = {fired, deferred, waiting, cancelled};
    reports_.buyers.push_back(lin);
    BuyerReport legacy;  // recorded before ids were checked
    legacy.buyer_id = "old\x01id";
    reports_.buyers.push_back(legacy);
  }

  FakeReports reports_;
  // The opt-outs and opt-ins handed over, answered as recorded.
  std::vector<std::pair<std::string, bool>> opt_changes_;
  api::BuyerRoutes routes_{
      context_, reports_, [this](std::string buyer, bool opt_out, HttpRespond respond) {
        opt_changes_.emplace_back(buyer, opt_out);
        respond(api::JsonResponse(200, {{"buyer_id", buyer}, {"opted_out", opt_out}}));
      }};
};

TEST_F(BuyerRoutesTest, TheTimelineIsInTheBuyersZoneWithReasons) {
  HttpResponse r = Send("GET", "/v1/buyers/lin");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto b = Body(r);
  EXPECT_EQ(b["tier"], "novice");
  EXPECT_EQ(b["opted_out"], false);
  ASSERT_EQ(b["purchases"].size(), 1u);
  EXPECT_EQ(b["purchases"][0]["purchased_at"], "2026-10-31T20:00:00+08:00");
  EXPECT_EQ(b["purchases"][0]["attributes"]["style"], "natural");
  EXPECT_EQ(b["purchases"][0]["received_at"], "2026-10-31T12:00:05Z");
  const auto& t = b["touchpoints"];
  ASSERT_EQ(t.size(), 4u);
  EXPECT_EQ(t[0]["status"], "fired");
  EXPECT_EQ(t[0]["fire_at"], "2026-11-01T20:00:00+08:00");
  EXPECT_FALSE(t[0].contains("reason"));
  EXPECT_EQ(t[0]["history"][1]["at"], "2026-11-01T20:00:00+08:00");
  EXPECT_EQ(t[1]["reason"], "waiting until 2026-11-04T09:00:00+08:00 (frequency cap: 2 per day)");
  EXPECT_EQ(t[1]["next_at"], "2026-11-04T09:00:00+08:00");
  EXPECT_TRUE(t[1]["fire_at"].is_null());
  EXPECT_EQ(t[2]["reason"], "waiting until due_at");
  EXPECT_EQ(t[3]["status"], "cancelled");
  EXPECT_EQ(t[3]["reason"], "repurchase o2");
  EXPECT_FALSE(t[3].contains("next_at"));
}

// The last 100 purchases by default, up to 500 when asked; how many
// earlier ones were left out is said.
TEST_F(BuyerRoutesTest, TheTimelineShowsTheLastPurchasesAndSaysHowManyAreLeftOut) {
  reports_.buyers[0].earlier_purchases = 250;
  HttpResponse r = Send("GET", "/v1/buyers/lin");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["earlier_purchases"], 250);
  EXPECT_EQ(Send("GET", "/v1/buyers/lin?purchases=500").status, 200);
  EXPECT_EQ(reports_.asked, (std::vector<std::int64_t>{100, 500}));
  for (const char* bad : {"0", "501", "x", "-1", ""}) {
    HttpResponse refused = Send("GET", std::string("/v1/buyers/lin?purchases=") + bad);
    EXPECT_EQ(refused.status, 400) << bad;
    EXPECT_EQ(Body(refused)["field"], "purchases");
  }
  EXPECT_EQ(reports_.asked.size(), 2U);  // a refused one reads nothing
}

TEST_F(BuyerRoutesTest, AnIdIsDecodedAndChecked) {
  HttpResponse unknown = Send("GET", "/v1/buyers/l%69n%20wu");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(Body(unknown)["error"], "unknown buyer 'lin wu'");
  EXPECT_EQ(Send("GET", "/v1/buyers/l%69n").status, 200);
  EXPECT_EQ(Send("GET", "/v1/buyers/lin%zz").status, 400);
  HttpResponse control = Send("GET", "/v1/buyers/new%01id");
  EXPECT_EQ(control.status, 400);
  EXPECT_EQ(Body(control)["field"], "buyer_id");
  // One recorded before ids were checked can still be seen and opted out.
  EXPECT_EQ(Send("GET", "/v1/buyers/old%01id").status, 200);
  EXPECT_EQ(Send("POST", "/v1/buyers/old%01id/opt-out").status, 200);
}

TEST_F(BuyerRoutesTest, OptOutAndOptInAreHandedOverWithTheDecodedId) {
  HttpResponse out = Send("POST", "/v1/buyers/l%69n/opt-out");
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(Body(out)["opted_out"], true);
  HttpResponse in = Send("POST", "/v1/buyers/lin/opt-in");
  ASSERT_EQ(in.status, 200);
  EXPECT_EQ(Body(in)["opted_out"], false);
  EXPECT_EQ(Send("GET", "/v1/buyers/lin/opt-out").status, 405);
  EXPECT_EQ(Send("POST", "/v1/buyers/new%01id/opt-out").status, 400);  // never handed over
  EXPECT_THAT(opt_changes_, ::testing::ElementsAre(std::pair<std::string, bool>("lin", true),
                                                   std::pair<std::string, bool>("lin", false)));
}

TEST_F(BuyerRoutesTest, AFailedReadAnswers500) {
  reports_.fail = Status::Error("disk I/O error");
  EXPECT_EQ(Send("GET", "/v1/buyers/lin").status, 500);
}

// A store that cannot answer for now (PostgreSQL away): 503 with
// Retry-After, as every route that needs the store answers, for the
// timeline and for the look-up of a legacy id alike.
TEST_F(BuyerRoutesTest, AStoreAwayAnswers503WithRetryAfter) {
  reports_.fail = Status::Unavailable("the database does not answer");
  for (const char* path : {"/v1/buyers/lin", "/v1/buyers/old%01id"}) {
    HttpResponse r = Send("GET", path);
    EXPECT_EQ(r.status, 503) << path << ": " << r.body;
    EXPECT_THAT(r.headers, ::testing::Contains(::testing::Pair("Retry-After", "10"))) << path;
  }
  EXPECT_EQ(Send("POST", "/v1/buyers/old%01id/opt-out").status, 503);
  EXPECT_TRUE(opt_changes_.empty());
}

}  // namespace
}  // namespace tp
