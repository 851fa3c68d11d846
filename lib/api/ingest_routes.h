// POST /v1/purchases and POST /v1/events (docs/api.md): the body checked
// completely (api/purchase_json.h, api/event_json.h), then handed to the
// group commit that records it and answers. Called on the daemon's loop; a
// body of kParseOnLoopBytes or more is parsed away from it (4 MiB took
// about 60 ms, more with many small values), and again if a reload swapped
// the rules meanwhile.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

#include "api/route_context.h"
#include "api/router.h"
#include "core/model.h"

namespace tp::api {

class IngestRoutes {
 public:
  // The answer while nothing is taken at all (stopping), or nullopt.
  using Closed = std::function<std::optional<HttpResponse>()>;
  // Records a request's items and answers it (daemon/ingest_batcher.h).
  using SubmitPurchases = std::function<void(std::vector<Purchase> items, HttpRespond respond)>;
  using SubmitEvents = std::function<void(std::vector<EngagementEvent> items, HttpRespond respond)>;
  // Runs `work` away from the loop, then `then` on it (daemon/off_loop.h).
  using OffLoop = std::function<void(std::function<void()> work, std::function<void()> then)>;

  // Bodies this large or larger are parsed by `off_loop`.
  static constexpr std::size_t kParseOnLoopBytes = 1024 * 1024;

  IngestRoutes(const RouteContext& context, Closed closed, SubmitPurchases purchases,
               SubmitEvents events, OffLoop off_loop)
      : context_(context),
        closed_(std::move(closed)),
        purchases_(std::move(purchases)),
        events_(std::move(events)),
        off_loop_(std::move(off_loop)) {}

  void AddTo(Router& router);

 private:
  template <typename Parsed>
  using Parse = Parsed (*)(std::string_view body, const Rules& rules);
  template <typename Parsed>
  struct Away;

  // Parses `req`'s body by `parse` (on the loop, or off it when large),
  // then, on the loop, answers its error or hands its items to `submit`.
  template <typename Parsed, typename Submit>
  void Take(const HttpRequest& req, Parse<Parsed> parse, const Submit& submit, HttpRespond respond);
  // Parses `job`'s body off the loop by its rules, then goes on on the loop.
  template <typename Parsed, typename Submit>
  void ParseAway(std::shared_ptr<Away<Parsed>> job, Parse<Parsed> parse, const Submit& submit);
  // Back on the loop: answers, parses again, or hands the items on.
  template <typename Parsed, typename Submit>
  void Resume(const std::shared_ptr<Away<Parsed>>& job, Parse<Parsed> parse, const Submit& submit);

  const RouteContext& context_;
  Closed closed_;
  SubmitPurchases purchases_;
  SubmitEvents events_;
  OffLoop off_loop_;
};

}  // namespace tp::api
