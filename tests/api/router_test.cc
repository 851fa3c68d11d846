// The route table and the helpers every route shares, in-process.
#include "api/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>

#include "api/http_json.h"

namespace tp::api {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RouterTest : public ::testing::Test {
 protected:
  RouterTest() {
    router_.Add("GET", "/healthz", Record("health"));
    router_.Add("GET", "/v1/buyers/{buyer}", Record("buyer"));
    router_.Add("POST", "/v1/buyers/{buyer}/opt-out", Record("opt-out"));
    router_.Add("POST", "/v1/dead-letters/replay", Record("replay all"));
    router_.Add("POST", "/v1/dead-letters/{id}/replay", Record("replay one"));
  }

  RouteHandler Record(std::string name) {
    return [this, name](const HttpRequest&, const RouteParams& params, HttpRespond respond) {
      called_ = name;
      params_.assign(params.begin(), params.end());
      respond(HttpResponse{200, "{}"});
    };
  }

  HttpResponse Send(std::string method, std::string target) {
    called_.reset();
    params_.clear();
    HttpResponse answer;
    router_.Route(HttpRequest{std::move(method), std::move(target), "", "", ""},
                  [&](HttpResponse r) { answer = std::move(r); });
    return answer;
  }

  Router router_;
  std::optional<std::string> called_;
  std::vector<std::string> params_;
};

TEST_F(RouterTest, MatchesLiteralsAndParametersAsSent) {
  EXPECT_EQ(Send("GET", "/healthz").status, 200);
  EXPECT_EQ(called_, "health");
  EXPECT_EQ(Send("GET", "/v1/buyers/lin%20wu?x=1").status, 200);
  EXPECT_EQ(called_, "buyer");
  EXPECT_THAT(params_, ElementsAre("lin%20wu"));  // decoded by the route, which names a bad one
  EXPECT_EQ(Send("POST", "/v1/dead-letters/replay").status, 200);
  EXPECT_EQ(called_, "replay all");
  EXPECT_EQ(Send("POST", "/v1/dead-letters/42/replay").status, 200);
  EXPECT_EQ(called_, "replay one");
  EXPECT_THAT(params_, ElementsAre("42"));
  // Empty segments are ignored, as before the table.
  EXPECT_EQ(Send("GET", "//v1//buyers/lin/").status, 200);
  EXPECT_EQ(called_, "buyer");
}

TEST_F(RouterTest, GetRoutesAnswerHead) {
  EXPECT_EQ(Send("HEAD", "/healthz").status, 200);
  EXPECT_EQ(called_, "health");
}

TEST_F(RouterTest, AnUnknownPathIs404AndAnotherMethodIs405WithAllow) {
  HttpResponse r = Send("GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_THAT(r.body, HasSubstr("no such endpoint"));
  EXPECT_FALSE(called_);
  EXPECT_EQ(Send("GET", "/v1/buyers/lin/opt-out/more").status, 404);
  r = Send("DELETE", "/v1/buyers/lin");
  EXPECT_EQ(r.status, 405);
  EXPECT_THAT(r.body, HasSubstr("method DELETE not allowed here (use GET)"));
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>("Allow", "GET")));
  EXPECT_EQ(Send("GET", "/v1/buyers/lin/opt-out").status, 405);
  EXPECT_FALSE(called_);
}

TEST(HttpJsonTest, PathsQueriesAndNumbers) {
  EXPECT_EQ(PercentDecode("a%20b%2Fc"), "a b/c");
  EXPECT_EQ(PercentDecode("%ff"), std::string("\xff"));
  EXPECT_EQ(PercentDecode("%2"), std::nullopt);
  EXPECT_EQ(PercentDecode("%zz"), std::nullopt);
  EXPECT_THAT(Segments("/v1//buyers/x/"), ElementsAre("v1", "buyers", "x"));
  EXPECT_EQ(QueryParam("/v1/dead-letters?sink=crm&limit=5", "limit"), "5");
  EXPECT_EQ(QueryParam("/x?sink=a+b%21", "sink"), "a b!");
  EXPECT_EQ(QueryParam("/x?sinks=1", "sink"), std::nullopt);
  EXPECT_EQ(QueryParam("/x", "sink"), std::nullopt);
  EXPECT_EQ(WholeNumber("42"), 42);
  EXPECT_EQ(WholeNumber("-1"), std::nullopt);
  EXPECT_EQ(WholeNumber("4x"), std::nullopt);
  EXPECT_EQ(WholeNumber("99999999999999999999"), std::nullopt);
  EXPECT_TRUE(IsJson("Application/JSON; charset=utf-8"));
  EXPECT_FALSE(IsJson("text/plain"));
}

TEST(HttpJsonTest, ObjectBodiesNameWhatIsWrong) {
  RequestJson out;
  EXPECT_EQ(ParseObject("", out, {"max"}), std::nullopt);
  EXPECT_TRUE(out.is_object() && out.empty());
  EXPECT_EQ(ParseObject(R"({"max": 3})", out, {"max"}), std::nullopt);
  EXPECT_EQ(out["max"], 3);
  auto bad = ParseObject(R"({"maxx": 3})", out, {"max", "visibility_s"});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr("unknown field 'maxx' (expected max, visibility_s)"));
  EXPECT_THAT(bad->body, HasSubstr(R"("field":"maxx")"));
  bad = ParseObject("[1]", out, {"max"});
  ASSERT_TRUE(bad);
  EXPECT_THAT(bad->body, HasSubstr("the body must be a JSON object"));
  bad = ParseObject(R"({"max": 1e400})", out, {"max"});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, HasSubstr(R"("field":"max")"));
}

}  // namespace
}  // namespace tp::api
