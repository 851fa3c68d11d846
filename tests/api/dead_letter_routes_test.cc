// The dead-letter routes in-process, over a fake OutboxStore.
#include "api/dead_letter_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <functional>
#include <optional>

#include "api/route_test.h"
#include "delivery/fake_outbox.h"

namespace tp {
namespace {

using ::testing::HasSubstr;

class DeadLetterRoutesTest : public testing::RouteTest {
 protected:
  DeadLetterRoutesTest() {
    routes_.AddTo(router_);
    // Five dead letters, three of them on "events"; one entry still trying.
    for (std::int64_t id = 1; id <= 6; ++id) {
      outbox_.Add(id, id % 2 == 1 || id == 6 ? "events" : "crm", clock_.Now());
      if (id < 6) outbox_.Kill(id, 8, "HTTP 500 from the receiver");
    }
  }

  testing::FakeOutbox outbox_;
  int woken_ = 0;
  api::DeadLetterRoutes routes_{
      context_, outbox_, [this] { ++woken_; },
      [this](std::function<void()> later) { boost::asio::post(io_, std::move(later)); }};
};

TEST_F(DeadLetterRoutesTest, TheListPagesThroughOneSinkOrAll) {
  HttpResponse all = Send("GET", "/v1/dead-letters");
  ASSERT_EQ(all.status, 200) << all.body;
  ASSERT_EQ(Body(all)["dead_letters"].size(), 5u);
  EXPECT_TRUE(Body(all)["next_after"].is_null());
  const auto first = Body(all)["dead_letters"][0];
  EXPECT_EQ(first["id"], 1);
  EXPECT_EQ(first["sink"], "events");
  EXPECT_EQ(first["touchpoint_id"], "tp-1");
  EXPECT_EQ(first["attempts"], 8);
  EXPECT_EQ(first["last_error"], "HTTP 500 from the receiver");
  EXPECT_EQ(first["event"]["n"], 1);  // the event as JSON, not a string

  HttpResponse page = Send("GET", "/v1/dead-letters?sink=events&limit=2");
  ASSERT_EQ(page.status, 200);
  ASSERT_EQ(Body(page)["dead_letters"].size(), 2u);
  EXPECT_EQ(Body(page)["next_after"], 3);
  HttpResponse rest = Send("GET", "/v1/dead-letters?sink=events&limit=2&after=3");
  ASSERT_EQ(Body(rest)["dead_letters"].size(), 1u);
  EXPECT_EQ(Body(rest)["dead_letters"][0]["id"], 5);
  EXPECT_TRUE(Body(rest)["next_after"].is_null());
}

TEST_F(DeadLetterRoutesTest, ABadListingNamesItsParameter) {
  const std::pair<const char*, const char*> cases[] = {
      {"/v1/dead-letters?sink=outbox", "sink"},  // a queue has no dead letters
      {"/v1/dead-letters?sink=nope", "sink"},
      // Never a sink's name: not "every sink's", nor a query the store refuses.
      {"/v1/dead-letters?sink=", "sink"},
      {"/v1/dead-letters?sink=%zz", "sink"},
      {"/v1/dead-letters?sink=%00", "sink"},
      {"/v1/dead-letters?sink=%FF", "sink"},
      {"/v1/dead-letters?sink=a%20b", "sink"},
      {"/v1/dead-letters?after=-1", "after"},
      {"/v1/dead-letters?after=1e3", "after"},
      {"/v1/dead-letters?limit=0", "limit"},
      {"/v1/dead-letters?limit=1001", "limit"},
      {"/v1/dead-letters?limit=99999999999999999999", "limit"},
  };
  for (const auto& [target, field] : cases) {
    HttpResponse r = Send("GET", target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_EQ(Body(r)["field"], field) << target;
  }
  // Refused before the store is asked (the fake has no letters, so a
  // name it was asked about is refused too, with more words).
  for (const char* target :
       {"/v1/dead-letters?sink=", "/v1/dead-letters?sink=%zz", "/v1/dead-letters?sink=%00",
        "/v1/dead-letters?sink=%FF", "/v1/dead-letters?sink=a%20b"}) {
    EXPECT_EQ(Body(Send("GET", target))["error"], "sink must name a webhook or redis sink")
        << target;
  }
}

// A reload removed the sink "old": its letters are still listed by name,
// while a name with none stays a 400.
TEST_F(DeadLetterRoutesTest, ARemovedSinksLettersAreListedByItsName) {
  outbox_.Add(7, "old", clock_.Now());
  outbox_.Kill(7, 3, "HTTP 503");
  HttpResponse r = Send("GET", "/v1/dead-letters?sink=old");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_EQ(Body(r)["dead_letters"].size(), 1u);
  EXPECT_EQ(Body(r)["dead_letters"][0]["id"], 7);
  EXPECT_EQ(Send("GET", "/v1/dead-letters?sink=gone").status, 400);
  // Replaying one sink's needs a configured one.
  EXPECT_EQ(Send("POST", "/v1/dead-letters/replay", R"({"sink": "old"})").status, 400);
}

TEST_F(DeadLetterRoutesTest, ReplayingOneWakesTheDispatcher) {
  HttpResponse r = Send("POST", "/v1/dead-letters/2/replay");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["replayed"], 1);
  EXPECT_FALSE(outbox_.Find(2)->dead);
  EXPECT_EQ(outbox_.Find(2)->item.attempts, 0);
  EXPECT_EQ(woken_, 1);

  // Again, as a retry whose answer was lost would: it waits already, as
  // does 6, which never died.
  for (const char* target : {"/v1/dead-letters/2/replay", "/v1/dead-letters/6/replay"}) {
    r = Send("POST", target);
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(Body(r)["replayed"], 0) << target;
    EXPECT_EQ(Body(r)["waiting"], 1) << target;
  }

  for (const char* target :
       {"/v1/dead-letters/60/replay", "/v1/dead-letters/0/replay", "/v1/dead-letters/x/replay"}) {
    HttpResponse missing = Send("POST", target);
    EXPECT_EQ(missing.status, 404) << target;
    EXPECT_THAT(Body(missing)["error"].get<std::string>(), HasSubstr("no dead letter")) << target;
  }
  EXPECT_EQ(woken_, 1);
}

TEST_F(DeadLetterRoutesTest, ReplayingManySaysWhich) {
  HttpResponse r = Send("POST", "/v1/dead-letters/replay", R"({"sink": "crm"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["replayed"], 2);
  EXPECT_TRUE(outbox_.Find(1)->dead);
  EXPECT_EQ(Body(Send("POST", "/v1/dead-letters/replay", R"({"all": true})"))["replayed"], 3);
  EXPECT_EQ(woken_, 2);

  const std::pair<const char*, const char*> cases[] = {
      {"{}", ""},
      {R"({"all": false})", "all"},
      {R"({"all": true, "sink": "nope"})", "sink"},
      {R"({"sink": "outbox"})", "sink"},
      {R"({"sink": 7})", "sink"},
  };
  for (const auto& [body, field] : cases) {
    HttpResponse bad = Send("POST", "/v1/dead-letters/replay", body);
    EXPECT_EQ(bad.status, 400) << body;
    if (*field != '\0') {
      EXPECT_EQ(Body(bad)["field"], field) << body;
    }
  }
  EXPECT_EQ(woken_, 2);
  // Both: that sink's (none left).
  HttpResponse both = Send("POST", "/v1/dead-letters/replay", R"({"all": true, "sink": "crm"})");
  ASSERT_EQ(both.status, 200) << both.body;
  EXPECT_EQ(Body(both)["replayed"], 0);
}

// A replay of them all goes in steps (each one short transaction), with
// what else waits on the loop run between two, and answers the sum.
TEST_F(DeadLetterRoutesTest, ReplayingThemAllGoesInStepsWithTheLoopsWorkBetween) {
  const int more = 2 * api::DeadLetterRoutes::kReplayStep + 5;
  for (std::int64_t id = 100; id < 100 + more; ++id) {
    outbox_.Add(id, "crm", clock_.Now());
    outbox_.Kill(id, 8, "HTTP 500 from the receiver");
  }
  std::optional<HttpResponse> answer;
  router_.Route(
      HttpRequest{"POST", "/v1/dead-letters/replay", "application/json", "", R"({"sink": "crm"})"},
      [&](HttpResponse r) { answer = std::move(r); });
  EXPECT_FALSE(answer.has_value());  // not in one go
  int steps_when_run = -1;
  boost::asio::post(io_, [&] { steps_when_run = outbox_.replay_steps; });
  io_.restart();
  io_.run();
  ASSERT_TRUE(answer.has_value());
  ASSERT_EQ(answer->status, 200) << answer->body;
  EXPECT_EQ(Body(*answer)["replayed"], more + 2);
  EXPECT_EQ(outbox_.replay_steps, 4);  // 1,000, 1,000, 7, then none
  EXPECT_EQ(steps_when_run, 2);        // between the second and the third
  EXPECT_EQ(woken_, 3);
  EXPECT_TRUE(outbox_.Find(1)->dead);  // events'
}

// What dies once the replay has started waits for the next one (a sink
// that refuses everything would otherwise keep a replay of them all going
// for ever); a step that fails, or a stop, answers with what the steps
// before it replayed, which stands.
TEST_F(DeadLetterRoutesTest, AReplayOfThemAllEndsAndSaysWhatItDidWhenCutShort) {
  const int more = api::DeadLetterRoutes::kReplayStep + 1;
  for (std::int64_t id = 100; id < 100 + more; ++id) {
    outbox_.Add(id, "crm", clock_.Now());
    outbox_.Kill(id, 8, "HTTP 500 from the receiver");
  }
  outbox_.Add(5000, "crm", clock_.Now());
  outbox_.Kill(5000, 1, "HTTP 401 from the receiver", clock_.Now() + std::chrono::seconds(1));
  HttpResponse r = Send("POST", "/v1/dead-letters/replay", R"({"sink": "crm"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["replayed"], more + 2);
  EXPECT_TRUE(outbox_.Find(5000)->dead);

  for (std::int64_t id = 100; id < 100 + more; ++id) outbox_.Kill(id, 8, "HTTP 500");
  outbox_.fail_step = outbox_.replay_steps + 2;
  r = Send("POST", "/v1/dead-letters/replay", R"({"sink": "crm"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_THAT(Body(r)["error"].get<std::string>(),
              HasSubstr("cannot replay the rest (1000 dead letters replayed before)"));
  EXPECT_FALSE(outbox_.Find(100)->dead);
  EXPECT_TRUE(outbox_.Find(100 + more - 1)->dead);

  outbox_.fail_step = 0;
  std::optional<HttpResponse> answer;
  router_.Route(
      HttpRequest{"POST", "/v1/dead-letters/replay", "application/json", "", R"({"sink": "crm"})"},
      [&](HttpResponse a) { answer = std::move(a); });
  routes_.Stop();  // after the first step, before the next
  io_.restart();
  io_.run();
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->status, 503) << answer->body;
  EXPECT_THAT(Body(*answer)["error"].get<std::string>(),
              HasSubstr("shutting down: 1 dead letter replayed, the rest not yet"));
}

TEST_F(DeadLetterRoutesTest, AStoreWithoutRoomAnswers503) {
  outbox_.fail = Status::Unavailable("database or disk is full");
  HttpResponse r = Send("POST", "/v1/dead-letters/replay", R"({"all": true})");
  EXPECT_EQ(r.status, 503);
  EXPECT_TRUE(Header(r, "Retry-After").has_value());
  EXPECT_THAT(Body(r)["error"].get<std::string>(), HasSubstr("cannot replay"));
  EXPECT_EQ(Send("POST", "/v1/dead-letters/1/replay").status, 503);
  EXPECT_EQ(Send("GET", "/v1/dead-letters").status, 503);
  EXPECT_EQ(woken_, 0);
  EXPECT_TRUE(outbox_.Find(1)->dead);
}

}  // namespace
}  // namespace tp
