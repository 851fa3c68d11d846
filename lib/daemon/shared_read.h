// One read for every asker at once, and a slow read's answer given again
// for a while. GET /v1/status counts the pending touchpoints of 30 days
// exactly, a scan of every pending row: 1.5 s at 3 million on PostgreSQL,
// so minutes at hundreds of millions (docs/scaling.md), while a status page
// open in each operator's browser asks every 15 s, and each scan keeps a
// thread of the store reader's (and, on PostgreSQL, a server process) busy.
// So askers while a read is under way share it, and a read that took
// `slow` or longer (as the read says: its own time, not its wait for the
// thread) is given again, as it was, for `keep` times as long as it took:
// reading then takes at most about a `keep`th of the thread's time,
// however many ask. A quicker read is never given again. A failed read is
// answered to those who shared it and not kept.
//
// Not thread-safe: one thread (the daemon's loop) calls Get() and the
// read's `done`.
#pragma once

#include <cassert>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace tp {

template <typename Key, typename T>
class SharedRead {
 public:
  using Steady = std::chrono::steady_clock;
  using Answer = std::function<void(const StatusOr<T>&)>;
  // Starts a read, which calls `done` once, on Get()'s thread, with what
  // it read and how long that took.
  using Done = std::function<void(StatusOr<T>, Steady::duration took)>;
  using Read = std::function<void(Done done)>;

  explicit SharedRead(std::chrono::milliseconds slow = std::chrono::milliseconds(100),
                      int keep = 10, std::function<Steady::time_point()> now = &Steady::now)
      : slow_(slow), keep_(keep), now_(std::move(now)) {}
  // Its reads call back into it.
  SharedRead(const SharedRead&) = delete;
  SharedRead& operator=(const SharedRead&) = delete;

  // Answers with the answer kept for `key` while it is to be given again,
  // or with the read under way for `key`, or with a new read (`read`). One
  // read at a time: an asker for another key waits for the one under way.
  // An answer must not throw: the askers after it would not be answered.
  void Get(const Key& key, const Read& read, Answer answer) {
    if (kept_ && now_() >= kept_->until) kept_.reset();
    if (kept_ && kept_->key == key) {
      const StatusOr<T> value = kept_->value;  // kept_ may change in answer()
      return answer(value);
    }
    if (under_way_) {
      under_way_->waiting.push_back({key, read, std::move(answer)});
      return;
    }
    under_way_.emplace();
    under_way_->key = key;
    under_way_->number = ++reads_;
    under_way_->waiting.push_back({key, read, std::move(answer)});
    const std::uint64_t number = reads_;
    try {
      // `alive`: a read that finishes after this object went is dropped.
      read([this, alive = std::weak_ptr<int>(alive_), number](StatusOr<T> value,
                                                              Steady::duration took) {
        if (alive.expired() || !under_way_ || under_way_->number != number) return;
        Finished(std::move(value), took);
      });
    } catch (const std::exception& e) {
      // A read that finished at once, and an answer that threw: not ours.
      if (!under_way_ || under_way_->number != number) throw;
      Finished(Status::Error(std::string("cannot start the read: ") + e.what()), {});
    }
  }

  // Whether an answer is kept (for tests).
  bool keeping() const { return kept_.has_value(); }

 private:
  struct Asker {
    Key key;
    Read read;
    Answer answer;
  };
  struct UnderWay {
    Key key;
    std::uint64_t number = 0;  // reads_ when it started
    std::vector<Asker> waiting;
  };
  struct Kept {
    Key key;
    StatusOr<T> value;
    Steady::time_point until;
  };

  void Finished(StatusOr<T> value, Steady::duration took) {
    assert(under_way_ && "a read finished twice");
    if (!under_way_) return;
    UnderWay finished = std::move(*under_way_);
    under_way_.reset();
    kept_.reset();
    if (value.ok() && took >= slow_) {
      kept_ = Kept{finished.key, value, now_() + took * keep_};
    }
    std::vector<Asker> later;  // who asked for another key meanwhile
    for (Asker& asker : finished.waiting) {
      if (asker.key == finished.key) {
        asker.answer(value);
      } else {
        later.push_back(std::move(asker));
      }
    }
    for (Asker& asker : later) Get(asker.key, asker.read, std::move(asker.answer));
  }

  const std::chrono::milliseconds slow_;
  const int keep_;
  const std::function<Steady::time_point()> now_;
  std::uint64_t reads_ = 0;  // started so far
  std::optional<UnderWay> under_way_;
  std::optional<Kept> kept_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

}  // namespace tp
