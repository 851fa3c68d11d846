// A stop that a server which stopped answering would hold. The daemon joins
// its threads as it stops, and a thread waiting for a frozen PostgreSQL
// server (its firing, ingest and re-plan threads wait without an answer
// limit, a report or a count of the pending days as long as the base makes
// them) would hold the stop for as long as the freeze lasts: until
// systemd's TimeoutStopSec (60 s) kills the daemon. Once started, every
// kCheck until it is destroyed, the guard cuts loose the statements that
// have waited kGrace for their answer (PgStore::CutWaiting): they fail as
// a lost connection, and their threads, seeing the stop, end. Once it has
// cut one, the server is taken for one that does not answer: from then on
// a statement that has waited kAfterCut is cut too, so that work still
// queued for the stop (ingest groups, each on a new connection to a server
// that takes connections and answers nothing) is not held kGrace each. On
// a server that answers, a stop is over long before kGrace, and its
// statements never wait kAfterCut.
//
// Start() from any one thread; the destructor ends the guard's thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "core/time.h"

namespace tp {

class StopGuard {
 public:
  static constexpr Millis kGrace{5000};
  static constexpr Millis kAfterCut{1000};
  static constexpr Millis kCheck{250};

  // `cut(waited)` cuts loose the statements that have waited at least
  // `waited` (kGrace, then kAfterCut), and says how many.
  explicit StopGuard(std::function<int(Millis)> cut);
  ~StopGuard();
  StopGuard(const StopGuard&) = delete;
  StopGuard& operator=(const StopGuard&) = delete;

  // The stop begins: the guard watches from now on. Once only.
  void Start();

 private:
  void Watch();

  std::function<int(Millis)> cut_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace tp
