// The queues' routes in-process, over a fake QueueStore and a fake maker of
// leased events that answers on a thread of its own, as StoreReader does;
// and over fake QueueJobs, leasing and acking on threads of their own, as
// PgReader does.
#include "api/queue_routes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "api/route_test.h"

namespace tp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FakeQueues final : public QueueStore {
 public:
  StatusOr<std::vector<LeasedRow>> TakeLease(std::string_view queue, int max, Millis visibility,
                                             Instant now) override {
    if (!fail.ok()) return fail;
    leases.push_back({std::string(queue), max, visibility, now});
    std::vector<LeasedRow> out;
    for (int i = 0; i < std::min(max, waiting); ++i) {
      out.push_back({100 + i, 200 + i, {"7." + std::to_string(i) + "ab", "", 1 + i}});
    }
    return out;
  }
  StatusOr<int> Ack(std::string_view queue, std::span<const std::string> receipts,
                    Instant) override {
    if (!fail.ok()) return fail;
    acked_on = std::string(queue);
    acked.assign(receipts.begin(), receipts.end());
    return static_cast<int>(receipts.size()) - 1;  // one of them was stale
  }
  StatusOr<std::int64_t> QueueDepth(std::string_view) override { return waiting; }

  struct Lease {
    std::string queue;
    int max;
    Millis visibility;
    Instant now;
  };
  std::vector<Lease> leases;
  std::string acked_on;
  std::vector<std::string> acked;
  int waiting = 3;
  Status fail = Status::Ok();
};

// Makes each event from its touchpoint's row id, on a thread of its own.
class FakeEvents final : public LeasedEvents {
 public:
  void Fill(std::vector<LeasedRow> leased, std::string, Filled done) override {
    std::thread([this, leased = std::move(leased), done = std::move(done)]() mutable {
      if (!fail.ok()) return done(fail);
      for (LeasedRow& r : leased) {
        r.message.event = R"({"touchpoint":)" + std::to_string(r.touchpoint) + "}";
      }
      done(std::move(leased));
    }).join();
  }
  Status fail = Status::Ok();
};

class QueueRoutesTest : public testing::RouteTest {
 protected:
  QueueRoutesTest() { routes_.AddTo(router_); }

  FakeQueues queues_;
  FakeEvents events_;
  api::QueueRoutes routes_{context_, io_, queues_, events_, nullptr};
};

// Leases two messages and acks every receipt, each on a thread of its own.
class FakeJobs final : public QueueJobs {
 public:
  ~FakeJobs() override {
    for (std::thread& t : threads_) t.join();
  }
  void Lease(std::string queue, int max, Millis, Instant now, LeasedEvents::Filled done) override {
    leased_on = queue;
    lease_now = now;
    threads_.emplace_back([this, max, done = std::move(done)] {
      if (!fail.ok()) return done(fail);
      std::vector<LeasedRow> rows;
      for (int i = 0; i < std::min(max, 2); ++i) {
        rows.push_back({10 + i,
                        20 + i,
                        {"9." + std::to_string(i) + "cd",
                         R"({"touchpoint":)" + std::to_string(20 + i) + "}", 1}});
      }
      done(std::move(rows));
    });
  }
  void Ack(std::string queue, std::vector<std::string> receipts, Instant, Acked done) override {
    acked_on = queue;
    acked = receipts;
    threads_.emplace_back([this, n = receipts.size(), done = std::move(done)] {
      if (!fail.ok()) return done(fail);
      done(static_cast<int>(n));
    });
  }

  std::string leased_on, acked_on;
  Instant lease_now{};
  std::vector<std::string> acked;
  Status fail = Status::Ok();

 private:
  std::vector<std::thread> threads_;
};

class QueueJobsRoutesTest : public testing::RouteTest {
 protected:
  QueueJobsRoutesTest() { routes_.AddTo(router_); }

  FakeQueues queues_;
  FakeEvents events_;
  FakeJobs jobs_;
  api::QueueRoutes routes_{context_, io_, queues_, events_, &jobs_};
};

TEST_F(QueueRoutesTest, ALeaseHandsOutTheMessagesWithTheirEvents) {
  HttpResponse r = Send("POST", "/v1/queues/outbox/lease", "");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = Body(r);
  ASSERT_EQ(body["messages"].size(), 3u);
  EXPECT_EQ(body["messages"][0]["receipt"], "7.0ab");
  EXPECT_EQ(body["messages"][0]["deliveries"], 1);
  EXPECT_EQ(body["messages"][2]["event"]["touchpoint"], 202);
  // The defaults: 10 messages, hidden for 30 s.
  ASSERT_EQ(queues_.leases.size(), 1u);
  EXPECT_EQ(queues_.leases[0].queue, "outbox");
  EXPECT_EQ(queues_.leases[0].max, 10);
  EXPECT_EQ(queues_.leases[0].visibility, std::chrono::seconds(30));
  EXPECT_EQ(queues_.leases[0].now, clock_.Now());

  HttpResponse some = Send("POST", "/v1/queues/outbox/lease", R"({"max": 2, "visibility_s": 0.5})");
  ASSERT_EQ(some.status, 200);
  EXPECT_EQ(Body(some)["messages"].size(), 2u);
  EXPECT_EQ(queues_.leases[1].visibility, Millis(500));

  queues_.waiting = 0;
  HttpResponse none = Send("POST", "/v1/queues/outbox/lease", "{}");
  EXPECT_EQ(none.status, 200);
  EXPECT_EQ(none.body, R"({"messages":[]})");
}

TEST_F(QueueRoutesTest, ABadLeaseNamesItsField) {
  for (const char* body :
       {R"({"max": 0})", R"({"max": 1001})", R"({"max": "5"})", R"({"max": 2.5})"}) {
    HttpResponse r = Send("POST", "/v1/queues/outbox/lease", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Body(r)["field"], "max") << body;
  }
  for (const char* body : {R"({"visibility_s": 0})", R"({"visibility_s": 0.0004})",
                           R"({"visibility_s": 43201})", R"({"visibility_s": null})"}) {
    HttpResponse r = Send("POST", "/v1/queues/outbox/lease", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Body(r)["field"], "visibility_s") << body;
  }
  EXPECT_EQ(Send("POST", "/v1/queues/outbox/lease", R"({"maximum": 5})").status, 400);
  EXPECT_EQ(Send("POST", "/v1/queues/outbox/lease", "[1]").status, 400);
  EXPECT_TRUE(queues_.leases.empty());  // nothing reached the store
}

TEST_F(QueueRoutesTest, OnlyAConfiguredQueueHasRoutes) {
  // A push sink is not a queue; a name is percent-decoded before it is looked up.
  for (const char* target :
       {"/v1/queues/events/lease", "/v1/queues/nope/lease", "/v1/queues/out%zzbox/lease"}) {
    HttpResponse r = Send("POST", target, "{}");
    EXPECT_EQ(r.status, 404) << target;
    EXPECT_THAT(Body(r)["error"].get<std::string>(), HasSubstr("unknown queue")) << target;
  }
  EXPECT_EQ(Send("POST", "/v1/queues/%6futbox/lease", "{}").status, 200);
  EXPECT_EQ(Send("GET", "/v1/queues/outbox/lease").status, 405);
  EXPECT_EQ(queues_.leases.size(), 1u);
}

TEST_F(QueueRoutesTest, AStoreWithoutRoomAnswers503AndAFailedFill500) {
  queues_.fail = Status::Unavailable("database or disk is full");
  HttpResponse full = Send("POST", "/v1/queues/outbox/lease", "{}");
  EXPECT_EQ(full.status, 503);
  EXPECT_TRUE(Header(full, "Retry-After").has_value());
  EXPECT_THAT(Body(full)["error"].get<std::string>(), HasSubstr("cannot lease"));
  EXPECT_EQ(Send("POST", "/v1/queues/outbox/ack", R"({"receipts": ["1.a"]})").status, 503);

  queues_.fail = Status::Error("disk I/O error");
  EXPECT_EQ(Send("POST", "/v1/queues/outbox/lease", "{}").status, 500);

  queues_.fail = Status::Ok();
  events_.fail = Status::Error("the reader's connection is gone");
  HttpResponse unfilled = Send("POST", "/v1/queues/outbox/lease", "{}");
  EXPECT_EQ(unfilled.status, 500);
  EXPECT_THAT(unfilled.body, HasSubstr("the reader's connection is gone"));
}

TEST_F(QueueRoutesTest, AnAckTakesReceiptsAndSaysHowManyCounted) {
  HttpResponse r = Send("POST", "/v1/queues/outbox/ack", R"({"receipts": ["1.a", "2.b"]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Body(r)["acked"], 1);
  EXPECT_EQ(queues_.acked_on, "outbox");
  EXPECT_THAT(queues_.acked, ElementsAre("1.a", "2.b"));

  for (const char* body : {"{}", R"({"receipts": "1.a"})", R"({"receipts": [1]})"}) {
    HttpResponse bad = Send("POST", "/v1/queues/outbox/ack", body);
    EXPECT_EQ(bad.status, 400) << body;
    EXPECT_EQ(Body(bad)["field"], "receipts") << body;
  }
  std::string many = R"({"receipts": [)";
  for (int i = 0; i <= 10'000; ++i) many += std::string(i ? "," : "") + "\"r\"";
  many += "]}";
  HttpResponse too_many = Send("POST", "/v1/queues/outbox/ack", many);
  EXPECT_EQ(too_many.status, 400);
  EXPECT_THAT(Body(too_many)["error"].get<std::string>(), HasSubstr("at most 10000"));
  EXPECT_EQ(queues_.acked.size(), 2u);
}

// With QueueJobs (PostgreSQL's reader), a lease and an ack are theirs: the
// loop's store and events maker are not called, the answers come back to
// the loop, and a failure is answered as the store's would be.
TEST_F(QueueJobsRoutesTest, LeasesAndAcksRunAsJobsAndAreAnsweredFromTheLoop) {
  HttpResponse r = Send("POST", "/v1/queues/outbox/lease", R"({"max": 5})");
  ASSERT_EQ(r.status, 200) << r.body;
  const auto body = Body(r);
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][0]["receipt"], "9.0cd");
  EXPECT_EQ(body["messages"][1]["event"]["touchpoint"], 21);
  EXPECT_EQ(jobs_.leased_on, "outbox");
  EXPECT_EQ(jobs_.lease_now, clock_.Now());
  HttpResponse acked = Send("POST", "/v1/queues/outbox/ack", R"({"receipts": ["9.0cd", "9.1cd"]})");
  ASSERT_EQ(acked.status, 200) << acked.body;
  EXPECT_EQ(Body(acked)["acked"], 2);
  EXPECT_EQ(jobs_.acked_on, "outbox");
  EXPECT_THAT(jobs_.acked, ElementsAre("9.0cd", "9.1cd"));
  EXPECT_TRUE(queues_.leases.empty());
  EXPECT_TRUE(queues_.acked.empty());

  // Bad input is answered on the loop and reaches no job.
  EXPECT_EQ(Send("POST", "/v1/queues/outbox/lease", R"({"max": 0})").status, 400);
  EXPECT_EQ(Send("POST", "/v1/queues/outbox/ack", R"({"receipts": [1]})").status, 400);
  EXPECT_EQ(jobs_.acked.size(), 2u);

  jobs_.fail = Status::Unavailable("the server does not answer");
  HttpResponse down = Send("POST", "/v1/queues/outbox/lease", "{}");
  EXPECT_EQ(down.status, 503);
  EXPECT_TRUE(Header(down, "Retry-After").has_value());
  EXPECT_THAT(Body(down)["error"].get<std::string>(), HasSubstr("cannot lease"));
  HttpResponse ack_down = Send("POST", "/v1/queues/outbox/ack", R"({"receipts": ["9.0cd"]})");
  EXPECT_EQ(ack_down.status, 503);
  EXPECT_THAT(Body(ack_down)["error"].get<std::string>(), HasSubstr("cannot ack"));
  jobs_.fail = Status::Error("deadlock detected");
  EXPECT_EQ(Send("POST", "/v1/queues/outbox/ack", R"({"receipts": ["9.0cd"]})").status, 500);
}

}  // namespace
}  // namespace tp
