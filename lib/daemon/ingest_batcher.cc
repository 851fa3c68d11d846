#include "daemon/ingest_batcher.h"

#include <boost/asio/post.hpp>
#include <type_traits>
#include <variant>

#include "api/http_json.h"
#include "daemon/session_thread.h"

namespace tp {

namespace asio = boost::asio;

// The writer thread: the groups handed to it written in order, over a
// store session and rules of its own.
class IngestBatcher::Thread {
 public:
  static StatusOr<std::unique_ptr<Thread>> Open(const RulesInForce& loop_rules, const Clock& clock,
                                                const OpenStore& open) {
    auto session = SessionThread<Store>::Open(loop_rules, open);
    if (!session.ok()) return session.status();
    std::unique_ptr<Thread> self(new Thread());
    self->writer_ = std::make_unique<IngestWriter>((*session)->store(), (*session)->store(), clock,
                                                   (*session)->rules());
    self->session_ = std::move(*session);
    return self;
  }

  // Writes `group` by the rules in force now, then calls `done` with what
  // it wrote, on the thread. `group` lives until `done` has been called.
  void Write(std::vector<const IngestItems*> group, std::function<void(WrittenGroup)> done) {
    session_->Post([this, group = std::move(group), done = std::move(done)](Store&) {
      done(writer_->Write(group));
    });
  }

 private:
  Thread() = default;

  std::unique_ptr<IngestWriter> writer_;
  // Last: it ends (after the groups handed over) before the writer goes.
  std::unique_ptr<SessionThread<Store>> session_;
};

namespace {

// The items a request writes (an opt change: one buyer's).
std::size_t ItemsOf(const IngestItems& items) {
  return std::visit(
      [](const auto& request) -> std::size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(request)>, OptChange>) {
          return 1;
        } else {
          return request.size();
        }
      },
      items);
}

}  // namespace

IngestBatcher::IngestBatcher(asio::io_context& io, Store& store, const Clock& clock,
                             DaemonMetrics& metrics, const RulesInForce& rules, Hooks hooks)
    : io_(io),
      clock_(clock),
      metrics_(metrics),
      rules_(rules),
      hooks_(std::move(hooks)),
      loop_writer_(store, store, clock, rules) {}

IngestBatcher::~IngestBatcher() = default;

Status IngestBatcher::UseThread(const OpenStore& open, std::size_t group_items,
                                std::size_t max_waiting, std::size_t max_requests) {
  auto thread = Thread::Open(rules_, clock_, open);
  if (!thread.ok()) return thread.status();
  thread_ = std::move(*thread);
  group_items_ = group_items;
  max_waiting_ = max_waiting;
  max_requests_ = max_requests;
  return Status::Ok();
}

std::optional<HttpResponse> IngestBatcher::TooManyWaiting(std::size_t n, const char* what) const {
  if (thread_ && waiting_requests_ >= max_requests_) {
    return api::Unavailable(std::string(what) +
                            " cannot be taken now: " + std::to_string(waiting_requests_) +
                            " requests wait to be written (the database is slow to answer)");
  }
  if (!thread_ || n == 0 || waiting_items_ == 0 || waiting_items_ + n <= max_waiting_) {
    return std::nullopt;
  }
  return api::Unavailable(std::string(what) +
                          " cannot be taken now: " + std::to_string(waiting_items_) +
                          " purchases, events and opt changes wait to be written (the database is "
                          "slow to answer)");
}

std::optional<HttpResponse> IngestBatcher::Closed() const {
  if (stopping_) return api::Unavailable("shutting down");
  return std::nullopt;
}

void IngestBatcher::Submit(std::vector<Purchase> items, HttpRespond respond) {
  if (auto why = hooks_.no_room()) {
    return respond(api::Unavailable("purchases cannot be recorded now: " + *why));
  }
  if (auto full = TooManyWaiting(items.size(), "purchases")) return respond(std::move(*full));
  Queue(std::move(items), std::move(respond));
}

void IngestBatcher::Submit(std::vector<EngagementEvent> items, HttpRespond respond) {
  if (auto why = hooks_.no_room()) {
    return respond(api::Unavailable("events cannot be recorded now: " + *why));
  }
  if (auto full = TooManyWaiting(items.size(), "events")) return respond(std::move(*full));
  Queue(std::move(items), std::move(respond));
}

void IngestBatcher::Submit(OptChange change, HttpRespond respond) {
  const char* what = change.opt_out ? "an opt-out" : "an opt-in";
  if (auto full = TooManyWaiting(0, what)) return respond(std::move(*full));
  Queue(std::move(change), std::move(respond));
}

void IngestBatcher::Queue(IngestItems items, HttpRespond respond) {
  if (thread_) {
    waiting_items_ += ItemsOf(items);
    ++waiting_requests_;
  }
  pending_.push_back({std::move(items), std::move(respond)});
  // While the thread writes a group, what arrives waits to be the next.
  if (handed_ == finished_) PostWrite();
}

void IngestBatcher::Flush() {
  WriteWaiting(true);
  flushed_ = handed_;
}

void IngestBatcher::Stop() {
  stopping_ = true;
  WriteWaiting(true);
}

std::vector<IngestBatcher::Pending> IngestBatcher::TakeGroup(std::size_t max_items) {
  std::size_t taken = 0, items = 0;
  for (; taken < pending_.size(); ++taken) {
    const std::size_t n = ItemsOf(pending_[taken].items);
    if (taken > 0 && max_items > 0 && items + n > max_items) break;
    items += n;
  }
  std::vector<Pending> group(std::make_move_iterator(pending_.begin()),
                             std::make_move_iterator(pending_.begin() + taken));
  pending_.erase(pending_.begin(), pending_.begin() + taken);
  return group;
}

void IngestBatcher::WriteWaiting(bool all) {
  flush_posted_ = false;
  if (!thread_) {
    // One group a turn, so that the loop is held for one group's write
    // (tens of milliseconds), not for every request waiting; all of them
    // when a reload or a stop must find them written.
    for (bool first = true; !pending_.empty() && (all || first); first = false) {
      std::vector<Pending> group = TakeGroup(kLoopGroupItems);
      std::vector<const IngestItems*> items;
      items.reserve(group.size());
      for (const Pending& p : group) items.push_back(&p.items);
      WrittenGroup written = loop_writer_.Write(items);
      Finish(std::move(group), std::move(written));
    }
    if (!pending_.empty()) PostWrite();
    return;
  }
  // Everything waiting is handed over now (a Flush() counts on it), in
  // groups of at most group_items_ items where requests allow: a larger
  // group would take every buyer's turn at once on the server, and other
  // daemons' groups would wait for it (store/pg/rows.h).
  while (!pending_.empty()) HandOver(TakeGroup(group_items_));
}

void IngestBatcher::PostWrite() {
  if (flush_posted_) return;
  flush_posted_ = true;
  asio::post(io_, [this] {
    if (flush_posted_) WriteWaiting(false);
  });
}

void IngestBatcher::HandOver(std::vector<Pending> requests) {
  auto group = std::make_shared<std::vector<Pending>>(std::move(requests));
  std::vector<const IngestItems*> items;
  items.reserve(group->size());
  for (const Pending& p : *group) items.push_back(&p.items);
  if (handed_++ == finished_) loop_work_.emplace(io_.get_executor());
  thread_->Write(std::move(items), [this, &io = io_, alive = std::weak_ptr<char>(alive_),
                                    group](WrittenGroup written) {
    asio::post(io, [this, alive, group, written = std::move(written)]() mutable {
      if (alive.expired()) return;
      if (++finished_ == handed_) loop_work_.reset();
      Finish(std::move(*group), std::move(written));
      if (finished_ == flushed_ && hooks_.written) hooks_.written();
      if (finished_ == handed_) WriteWaiting(false);
    });
  });
}

void IngestBatcher::Finish(std::vector<Pending> group, WrittenGroup written) {
  if (thread_) {
    for (const Pending& p : group) waiting_items_ -= ItemsOf(p.items);
    waiting_requests_ -= group.size();
  }
  if (written.unavailable) hooks_.storage_full();
  if (written.committed) {
    ObserverLog::Tell(written.observed, metrics_);
    const IngestCounts& counts = written.counts;
    metrics_.ingest_purchases.Add({"accepted"}, static_cast<double>(counts.accepted));
    metrics_.ingest_purchases.Add({"duplicate"}, static_cast<double>(counts.duplicates));
    metrics_.ingest_purchases.Add({"conflict"}, static_cast<double>(counts.conflicts));
    for (const auto& [key, n] : counts.events) {
      metrics_.events.Add({key.first, key.second}, static_cast<double>(n));
    }
  }
  for (std::size_t r = 0; r < group.size(); ++r) group[r].respond(std::move(written.responses[r]));
  if (written.committed) hooks_.committed();
}

}  // namespace tp
