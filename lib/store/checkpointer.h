// Copies committed WAL frames into the database file on its own thread and
// connection, so the thread that writes seldom waits for a checkpoint: their
// page copies and fsyncs took about a tenth of that thread's time under load.
//
// A WAL only starts over from its beginning when a write transaction begins
// with every frame copied, which a checkpoint running beside a busy writer
// never achieves: the writer appended more meanwhile. So once the thread
// copied most of the WAL, the writer copies the few frames left itself,
// between two transactions, and its next transaction starts the WAL over.
// Internal to lib/store: Database installs OnCommit() as its WAL hook.
#pragma once

#include <SQLiteCpp/Database.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace tp {

class Checkpointer {
 public:
  static constexpr int kCheckpointPages = 1000;  // SQLite's own default
  // At most this many frames left, the writer copies them itself.
  static constexpr int kCatchUpPages = 256;
  // Past this the writer waits for the thread's copy to end and copies what
  // is left itself: the thread fell behind a writer faster than its copy.
  static constexpr int kBackstopPages = 4 * kCheckpointPages;

  // Opens its own connection to `path` (in WAL mode) and starts the thread.
  explicit Checkpointer(const std::string& path);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // SQLite's WAL hook on the writer's connection, after each commit; `pages`
  // is how many frames the WAL holds.
  static int OnCommit(void* self, sqlite3* db, const char* name, int pages);

 private:
  void Run();

  SQLite::Database db_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;  // the thread finished a copy
  bool requested_ = false;
  bool running_ = false;
  int copied_ = 0;      // frames of the WAL the thread copied last
  int last_pages_ = 0;  // frames in the WAL after the last commit
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace tp
