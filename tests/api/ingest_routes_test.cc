// POST /v1/purchases and /v1/events in-process: a body of a megabyte or
// more is parsed by the off-loop hook (here run on a thread of the test's
// when the test says), and answered or handed on only back on the loop,
// checked again if a reload swapped the rules meanwhile; a smaller one on
// the loop at once.
#include "api/ingest_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "api/route_test.h"
#include "daemon/due_now.h"

namespace tp {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;

class IngestRoutesTest : public testing::RouteTest {
 protected:
  IngestRoutesTest() { routes_.AddTo(router_); }

  // `n` purchases of `daily`, each with `pad` bytes of attributes.
  static std::string Purchases(int n, std::size_t pad) {
    json all = json::array();
    for (int i = 0; i < n; ++i) {
      all.push_back({{"order_id", "o" + std::to_string(i)},
                     {"buyer_id", "b" + std::to_string(i)},
                     {"product", "daily"},
                     {"quantity", 1},
                     {"amount", 120},
                     {"purchased_at", "2026-11-01T10:00:00+08:00"},
                     {"attributes", {{"note", std::string(pad, 'x')}}}});
    }
    return all.dump();
  }

  void Post(std::string target, std::string body) {
    router_.Route(HttpRequest{"POST", std::move(target), "application/json", "", std::move(body)},
                  [this](HttpResponse r) { answer_ = std::move(r); });
  }

  // Runs what went off the loop on a thread of its own, then what follows
  // on the "loop" (this thread).
  void RunAway() {
    ASSERT_EQ(away_.size(), 1U);
    auto [work, then] = std::move(away_.front());
    away_.clear();
    std::thread(work).join();
    then();
  }

  std::optional<HttpResponse> closed_;
  std::vector<std::pair<std::function<void()>, std::function<void()>>> away_;
  std::vector<std::size_t> submitted_;  // each request's purchases or events
  std::optional<HttpResponse> answer_;
  api::IngestRoutes routes_{context_, [this] { return closed_; },
                            [this](std::vector<Purchase> items, HttpRespond respond) {
                              submitted_.push_back(items.size());
                              respond(HttpResponse{200, "{}"});
                            },
                            [this](std::vector<EngagementEvent> items, HttpRespond respond) {
                              submitted_.push_back(items.size());
                              respond(HttpResponse{200, "{}"});
                            },
                            [this](std::function<void()> work, std::function<void()> then) {
                              away_.emplace_back(std::move(work), std::move(then));
                            }};
};

TEST_F(IngestRoutesTest, ASmallBodyIsParsedOnTheLoop) {
  const std::string body = Purchases(10, 100);
  ASSERT_LT(body.size(), api::IngestRoutes::kParseOnLoopBytes);
  Post("/v1/purchases", body);
  EXPECT_TRUE(away_.empty());
  ASSERT_TRUE(answer_);
  EXPECT_EQ(answer_->status, 200);
  EXPECT_EQ(submitted_, std::vector<std::size_t>{10});
}

TEST_F(IngestRoutesTest, ALargeBodyIsParsedOffTheLoop) {
  const std::string body = Purchases(1000, 1100);
  ASSERT_GE(body.size(), api::IngestRoutes::kParseOnLoopBytes);
  Post("/v1/purchases", body);
  EXPECT_FALSE(answer_);  // not yet: its parse is away
  EXPECT_TRUE(submitted_.empty());
  RunAway();
  ASSERT_TRUE(answer_);
  EXPECT_EQ(answer_->status, 200) << answer_->body;
  EXPECT_EQ(submitted_, std::vector<std::size_t>{1000});
}

// The rules that will record it are those it is checked by: a reload while
// it was parsed (to rules without `daily`) has it parsed again.
TEST_F(IngestRoutesTest, ALargeBodyIsCheckedAgainByTheRulesOfAReloadMeanwhile) {
  Post("/v1/purchases", Purchases(1000, 1100));
  rules_.Swap(testing::MustLoad(testing::kDueNowConfig));
  RunAway();
  EXPECT_FALSE(answer_);
  RunAway();
  ASSERT_TRUE(answer_);
  EXPECT_EQ(answer_->status, 400);
  EXPECT_EQ(Body(*answer_)["field"], "product");
  EXPECT_TRUE(submitted_.empty());
}

TEST_F(IngestRoutesTest, ALargeBodysErrorNamesItsItem) {
  std::string body = Purchases(1000, 1100);
  body.replace(body.rfind("\"daily\""), 7, "\"weekly\"");
  Post("/v1/purchases", body);
  EXPECT_FALSE(answer_);
  RunAway();
  ASSERT_TRUE(answer_);
  EXPECT_EQ(answer_->status, 400);
  EXPECT_EQ(Body(*answer_)["index"], 999);
  EXPECT_EQ(Body(*answer_)["field"], "product");
  EXPECT_TRUE(submitted_.empty());
}

TEST_F(IngestRoutesTest, AStopWhileALargeBodyIsParsedRecordsNothing) {
  std::string events = "[";
  for (int i = 0; i < 1000; ++i) {
    if (i > 0) events += ",";
    events += json{{"event_id", "e" + std::to_string(i)},
                   {"buyer_id", "b"},
                   {"type", "replied"},
                   {"at", "2026-11-01T10:00:00+08:00"},
                   {"attributes", {{"note", std::string(1100, 'y')}}}}
                  .dump();
  }
  events += "]";
  ASSERT_GE(events.size(), api::IngestRoutes::kParseOnLoopBytes);
  Post("/v1/events", events);
  EXPECT_FALSE(answer_);
  closed_ = HttpResponse{503, R"({"error":"shutting down"})"};
  RunAway();
  ASSERT_TRUE(answer_);
  EXPECT_EQ(answer_->status, 503);
  EXPECT_THAT(answer_->body, HasSubstr("shutting down"));
  EXPECT_TRUE(submitted_.empty());
}

}  // namespace
}  // namespace tp
