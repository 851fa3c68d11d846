#include "api/dead_letter_routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "api/http_json.h"
#include "core/text.h"

namespace tp::api {

void DeadLetterRoutes::AddTo(Router& router) {
  router.Add("GET", "/v1/dead-letters",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               respond(List(req.target));
             });
  router.Add("POST", "/v1/dead-letters/replay",
             [this](const HttpRequest& req, const RouteParams&, HttpRespond respond) {
               ReplayAll(req.body, std::move(respond));
             });
  router.Add("POST", "/v1/dead-letters/{id}/replay",
             [this](const HttpRequest&, const RouteParams& params, HttpRespond respond) {
               respond(ReplayOne(params[0]));
             });
}

bool DeadLetterRoutes::IsPushSink(std::string_view name) const {
  const auto& sinks = context_.rules->sinks;
  return std::any_of(sinks.begin(), sinks.end(),
                     [&](const Sink& s) { return s.IsPush() && s.name == name; });
}

HttpResponse DeadLetterRoutes::List(std::string_view target) {
  const auto sink_param = QueryParam(target, "sink");
  // A sink no longer configured may still have letters (a reload removed
  // it): listed, so that they can be seen; a name with none is a 400.
  const bool configured = !sink_param || IsPushSink(*sink_param);
  if (!configured && !IsName(*sink_param)) {
    return FieldError(400, "sink must name a webhook or redis sink", "sink");
  }
  const std::string sink = sink_param.value_or("");
  std::int64_t after = 0;
  if (auto v = QueryParam(target, "after")) {
    auto n = WholeNumber(*v);
    if (!n) return FieldError(400, "after must be a dead letter id", "after");
    after = *n;
  }
  int limit = kDefaultDeadLetterLimit;
  if (auto v = QueryParam(target, "limit")) {
    auto n = WholeNumber(*v);
    if (!n || *n < 1 || *n > kMaxDeadLetterLimit) {
      return FieldError(400,
                        "limit must be an integer from 1 to " + std::to_string(kMaxDeadLetterLimit),
                        "limit");
    }
    limit = static_cast<int>(*n);
  }
  auto letters = outbox_.DeadLetters(sink, after, limit);
  if (!letters.ok()) return context_.store_failed(letters.status(), "cannot list dead letters");
  if (!configured && after == 0 && letters->empty()) {
    return FieldError(400, "sink must name a webhook or redis sink (or one with dead letters)",
                      "sink");
  }
  Json items = Json::array();
  for (const DeadLetter& d : *letters) {
    items.push_back({{"id", d.id},
                     {"sink", d.sink},
                     {"touchpoint_id", d.touchpoint_id},
                     {"attempts", d.attempts},
                     {"last_error", d.last_error},
                     {"dead_at", FormatRfc3339(d.dead_at, UtcZone())},
                     {"event", Json::parse(d.event, nullptr, false)}});
  }
  const bool full = static_cast<int>(letters->size()) == limit;
  return JsonResponse(200, {{"dead_letters", std::move(items)},
                            {"next_after", full ? Json(letters->back().id) : Json(nullptr)}});
}

HttpResponse DeadLetterRoutes::ReplayOne(std::string_view id_text) {
  auto id = WholeNumber(id_text);
  if (!id || *id == 0) return ErrorResponse(404, "no dead letter '" + std::string(id_text) + "'");
  auto replayed = outbox_.ReplayDeadLetter(*id, context_.clock.Now());
  if (!replayed.ok()) return context_.store_failed(replayed.status(), "cannot replay");
  using ReplayedOne = OutboxStore::ReplayedOne;
  // Waiting already (a retry whose first answer was lost, or a replay by
  // someone else): what the replay asks for holds, so not an error.
  if (*replayed == ReplayedOne::kWaiting)
    return JsonResponse(200, Json{{"replayed", 0}, {"waiting", 1}});
  if (*replayed == ReplayedOne::kUnknown) {
    return ErrorResponse(404, "no dead letter " + std::to_string(*id));
  }
  spdlog::info("dead letter {} replayed", *id);
  wake_();
  return JsonResponse(200, Json{{"replayed", 1}});
}

void DeadLetterRoutes::ReplayAll(const std::string& body, HttpRespond respond) {
  RequestJson req;
  if (auto bad = ParseObject(body, req, {"all", "sink"})) return respond(std::move(*bad));
  const auto all = req.find("all");
  const auto named = req.find("sink");
  // `sink` alone or with `all`: that sink's; `all` alone: every one.
  if (all == req.end() && named == req.end()) {
    return respond(
        JsonResponse(400, {{"error",
                            "say which dead letters to replay: {\"all\": true} for every one, "
                            "or {\"sink\": NAME} for one sink's"},
                           {"field", nullptr}}));
  }
  std::string sink;
  if (all != req.end() && *all != true) {
    return respond(FieldError(400, "all must be true (or use sink)", "all"));
  }
  if (named != req.end()) {
    if (!named->is_string() || !IsPushSink(named->get<std::string>())) {
      return respond(FieldError(400, "sink must name a webhook or redis sink", "sink"));
    }
    sink = named->get<std::string>();
  }
  ReplayStep(std::make_shared<Replaying>(
      Replaying{std::move(sink), context_.clock.Now(), 0, 0, std::move(respond)}));
}

void DeadLetterRoutes::ReplayStep(const std::shared_ptr<Replaying>& r) {
  const std::string on = r->sink.empty() ? "" : " on " + r->sink;
  if (stopping_) {
    spdlog::info("{} replayed{} before the stop", Plural(r->replayed, "dead letter"), on);
    return r->respond(Unavailable("shutting down: " + Plural(r->replayed, "dead letter") +
                                  " replayed, the rest not yet"));
  }
  auto step = outbox_.ReplayDeadLettersAfter(r->sink, r->after, r->dead_by, kReplayStep,
                                             context_.clock.Now());
  if (!step.ok()) {
    // The steps before stand: a replay asked again goes on from there.
    if (r->replayed > 0) {
      spdlog::info("{} replayed{} before a step failed", Plural(r->replayed, "dead letter"), on);
      wake_();
    }
    return r->respond(context_.store_failed(
        step.status(), r->replayed == 0
                           ? std::string("cannot replay")
                           : "cannot replay the rest (" + Plural(r->replayed, "dead letter") +
                                 " replayed before)"));
  }
  if (step->last_id > 0) {  // something read: there may be more
    r->replayed += step->replayed;
    r->after = step->last_id;
    if (step->replayed > 0) wake_();
    return later_([this, r] { ReplayStep(r); });
  }
  spdlog::info("{} replayed{}", Plural(r->replayed, "dead letter"), on);
  r->respond(JsonResponse(200, Json{{"replayed", r->replayed}}));
}

}  // namespace tp::api
