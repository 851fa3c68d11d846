#include "api/ingest_routes.h"

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "api/event_json.h"
#include "api/http_json.h"
#include "api/purchase_json.h"

namespace tp::api {
namespace {

HttpResponse Refused(const BodyError& e) {
  return JsonResponse(400, {{"error", e.error},
                            {"index", e.index ? Json(*e.index) : Json(nullptr)},
                            {"field", e.field.empty() ? Json(nullptr) : Json(e.field)}});
}

// The default max_items, so that each can be taken as a plain function.
ParsedPurchases PurchasesOf(std::string_view body, const Rules& rules) {
  return ParsePurchases(body, rules);
}
ParsedEvents EventsOf(std::string_view body, const Rules& rules) {
  return ParseEvents(body, rules);
}

}  // namespace

// A large body's request while its body is parsed off the loop.
template <typename Parsed>
struct IngestRoutes::Away {
  std::string body;
  std::shared_ptr<const Rules> rules;  // those it is parsed by
  Parsed parsed;
  std::optional<std::string> threw;  // what the parse threw (out of memory)
  HttpRespond respond;
};

template <typename Parsed, typename Submit>
void IngestRoutes::Take(const HttpRequest& req, Parse<Parsed> parse, const Submit& submit,
                        HttpRespond respond) {
  if (auto closed = closed_()) return respond(std::move(*closed));
  if (req.body.size() < kParseOnLoopBytes) {
    Parsed parsed = parse(req.body, *context_.rules);
    if (parsed.error) return respond(Refused(*parsed.error));
    return submit(std::move(parsed.items), std::move(respond));
  }
  ParseAway(std::make_shared<Away<Parsed>>(Away<Parsed>{
                req.body, context_.rules.shared(), {}, std::nullopt, std::move(respond)}),
            parse, submit);
}

template <typename Parsed, typename Submit>
void IngestRoutes::ParseAway(std::shared_ptr<Away<Parsed>> job, Parse<Parsed> parse,
                             const Submit& submit) {
  off_loop_(
      [job, parse] {
        try {
          job->parsed = parse(job->body, *job->rules);
        } catch (const std::exception& e) {
          job->threw = e.what();
        }
      },
      [this, job, parse, &submit] {
        // As the server answers what its handler throws (out of memory).
        try {
          Resume(job, parse, submit);
        } catch (const std::exception& e) {
          if (job->respond)
            job->respond(ErrorResponse(500, std::string("internal error: ") + e.what()));
        }
      });
}

template <typename Parsed, typename Submit>
void IngestRoutes::Resume(const std::shared_ptr<Away<Parsed>>& job, Parse<Parsed> parse,
                          const Submit& submit) {
  // Stopping meanwhile: nothing is recorded.
  if (auto closed = closed_()) return job->respond(std::move(*closed));
  if (job->threw) return job->respond(ErrorResponse(500, "internal error: " + *job->threw));
  // A reload meanwhile: checked again by the rules in force now, which will
  // record it (a reload writes what was queued before it by the old rules,
  // and this was not queued).
  if (job->rules != context_.rules.shared()) {
    job->rules = context_.rules.shared();
    return ParseAway(job, parse, submit);
  }
  if (job->parsed.error) return job->respond(Refused(*job->parsed.error));
  submit(std::move(job->parsed.items), std::move(job->respond));
}

void IngestRoutes::AddTo(Router& router) {
  router.Add("POST", "/v1/purchases",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               Take(req, &PurchasesOf, purchases_, std::move(respond));
             });
  router.Add("POST", "/v1/events",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               Take(req, &EventsOf, events_, std::move(respond));
             });
}

}  // namespace tp::api
