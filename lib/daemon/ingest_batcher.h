// Group commit of POST /v1/purchases, POST /v1/events and a buyer's
// opt-out and opt-in (POST /v1/buyers/{id}/opt-out, /opt-in): the requests
// that arrive while a group is being written are written together, as the
// next group (on the loop, of at most kLoopGroupItems items where requests
// allow, one a turn), in one transaction (daemon/ingest_writer.h), and every answer
// is sent only after the commit. A failure that may have ended the whole
// transaction (a full disk, an I/O error) answers every request of the
// group 5xx: none is recorded.
//
// Where a group is written:
//  - on the daemon's loop, over the loop's store (SQLite: one writer at a
//    time, and a group takes milliseconds);
//  - after UseThread(), on a thread of its own over a store session of its
//    own (PostgreSQL), as another daemon would write it: a group of large
//    requests takes 100 ms or more on the server, which held /healthz,
//    leases and acks up when it ran on the loop (docs/benchmarks.md). One
//    group at a time, in the order handed over (what waits is handed over
//    at once, in groups of at most UseThread()'s limit where the requests
//    allow); each is written by the rules in force when it was handed
//    over, which the thread swaps into its own RulesInForce; the answers
//    go out from the loop.
//
// Not thread-safe: the daemon's loop only (the thread is this class's own).
#pragma once

// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/rules_in_force.h"
#include "core/clock.h"
#include "core/model.h"
#include "core/status.h"
#include "daemon/daemon_metrics.h"
#include "daemon/ingest_writer.h"
#include "http/server.h"
#include "store/store.h"

namespace tp {

class IngestBatcher {
 public:
  struct Hooks {
    // Why purchases cannot be taken now (no room for them), or nullopt.
    std::function<std::optional<std::string>()> no_room;
    // A store call failed as Unavailable (no room, or no server): check
    // the store now.
    std::function<void()> storage_full;
    // A group committed: touchpoints may be due sooner.
    std::function<void()> committed;
    // Every group handed over before the last Flush() is written now.
    std::function<void()> written;
  };
  // The writer thread's store, reading `rules` (the thread's own).
  using OpenStore = std::function<StatusOr<std::unique_ptr<Store>>(const RulesInForce& rules)>;

  // Writes on the loop over `store`; `store`, `clock`, `metrics` and
  // `rules` (read on the loop) outlive *this.
  IngestBatcher(boost::asio::io_context& io, Store& store, const Clock& clock,
                DaemonMetrics& metrics, const RulesInForce& rules, Hooks hooks);
  ~IngestBatcher();
  IngestBatcher(const IngestBatcher&) = delete;
  IngestBatcher& operator=(const IngestBatcher&) = delete;

  // Purchases and events that may wait to be written on the thread, queued
  // or handed over: past that, a request is answered 503 at once. A server
  // that takes connections but whose statements hang (or merely a slow
  // one) would otherwise let requests pile up in memory for as long,
  // clients' retries on top of the requests they gave up on.
  static constexpr std::size_t kMaxWaitingItems = 100'000;
  // Requests that may wait, whatever their size: each holds its client's
  // connection (a socket, and its buffers) until it is answered, so
  // opt-outs and opt-ins, taken past kMaxWaitingItems, stop here too.
  static constexpr std::size_t kMaxWaitingRequests = 10'000;

  // From now on, writes on a thread of its own over the store `open` gives
  // (before the first request), in groups of at most `group_items`
  // purchases, events or opt changes (0: no limit) where the requests
  // allow: a request larger than that is a group of its own. At most
  // `max_waiting` purchases and events wait (kMaxWaitingItems; a request
  // larger than that is taken when none waits), and at most
  // `max_requests` requests (kMaxWaitingRequests).
  Status UseThread(const OpenStore& open, std::size_t group_items = 0,
                   std::size_t max_waiting = kMaxWaitingItems,
                   std::size_t max_requests = kMaxWaitingRequests);

  // 503 while stopping, else nullopt (asked before the body is parsed).
  std::optional<HttpResponse> Closed() const;
  // Queues a request's purchases (or events) for the next group; answers
  // 503 at once when there is no room for them, or (on the thread) when
  // too many wait to be written already.
  void Submit(std::vector<Purchase> items, HttpRespond respond);
  void Submit(std::vector<EngagementEvent> items, HttpRespond respond);
  // An opt-out or opt-in: taken even when there is no room for purchases
  // (a buyer's wish to hear no more is not put off for want of space), or
  // when too many purchases and events wait; but not past
  // kMaxWaitingRequests.
  void Submit(OptChange change, HttpRespond respond);
  // Writes the group waiting now, if any, by the rules in force (a reload
  // records what was parsed under the old rules by them): at once on the
  // loop; on the thread, Written() says when it is, and `written` is told.
  void Flush();
  // Whether every group handed over before the last Flush() is written
  // (a reload's re-plan waits for them, so that it finds them).
  bool Written() const { return finished_ >= flushed_; }
  // No more requests (the daemon is stopping): those queued are written,
  // and answered from the loop, which keeps running until they are. The
  // thread ends with *this, after the groups handed over (were the loop
  // not run again, they would be written but not answered).
  void Stop();

 private:
  struct Pending {
    IngestItems items;
    HttpRespond respond;
  };
  class Thread;

  // On the loop, the purchases, events and opt changes of a group at most,
  // where requests allow (a request of more is a group of its own).
  static constexpr std::size_t kLoopGroupItems = 1000;

  void Queue(IngestItems items, HttpRespond respond);
  // Takes the first requests waiting, of at most `max_items` items in all
  // (0: no limit), and at least one.
  std::vector<Pending> TakeGroup(std::size_t max_items);
  // WriteWaiting(false) on the loop's next turn, unless already posted.
  void PostWrite();
  // 503 when `n` more purchases or events would be more than may wait, or
  // one more request (an opt change: `n` 0, only that).
  std::optional<HttpResponse> TooManyWaiting(std::size_t n, const char* what) const;
  // Hands `requests` to the thread as one group.
  void HandOver(std::vector<Pending> requests);
  // Hands the requests waiting now to the writer, all of them (`all`, or
  // on the thread) or the first group (on the loop, the rest on the next
  // turn): written at once on the loop, or posted to the thread.
  void WriteWaiting(bool all);
  // On the loop, once a group is written: metrics, hooks, answers.
  void Finish(std::vector<Pending> group, WrittenGroup written);

  boost::asio::io_context& io_;
  const Clock& clock_;
  DaemonMetrics& metrics_;
  const RulesInForce& rules_;
  Hooks hooks_;
  IngestWriter loop_writer_;
  std::unique_ptr<Thread> thread_;
  std::size_t group_items_ = 0;   // UseThread()'s
  std::size_t max_waiting_ = 0;   // UseThread()'s
  std::size_t max_requests_ = 0;  // UseThread()'s
  // Items and requests queued or on the thread (UseThread()), until their
  // group is finished on the loop.
  std::size_t waiting_items_ = 0, waiting_requests_ = 0;
  std::vector<Pending> pending_;
  bool flush_posted_ = false;
  // Groups handed to the thread, and finished on the loop, since the
  // start (the difference: those on the thread now); how many had been
  // handed over at the last Flush().
  std::uint64_t handed_ = 0, finished_ = 0, flushed_ = 0;
  // While groups are on the thread: the loop does not run out of work
  // before the answers.
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      loop_work_;
  bool stopping_ = false;
  // Expires with *this: what the thread posts to the loop checks it.
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace tp
