#include "store/checkpointer.h"

#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tp {
namespace {

// A failed checkpoint fails again at every commit while its cause lasts (a
// full disk): one line a minute, from either thread.
void WarnCheckpoint(int rc) {
  static std::atomic<std::int64_t> last_logged{-60};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  std::int64_t last = last_logged.load();
  if (now - last < 60 || !last_logged.compare_exchange_strong(last, now)) return;
  spdlog::warn("database checkpoint: {} (logged once a minute while it lasts)", sqlite3_errstr(rc));
}

}  // namespace

Checkpointer::Checkpointer(const std::string& path)
    : db_(path, SQLite::OPEN_READWRITE | SQLite::OPEN_NOMUTEX) {
  db_.setBusyTimeout(5000);
  // A connection learns that the file is in WAL mode by reading it; until
  // then a checkpoint does nothing.
  db_.exec("SELECT COUNT(*) FROM sqlite_schema");
  thread_ = std::thread([this] { Run(); });
}

Checkpointer::~Checkpointer() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

int Checkpointer::OnCommit(void* self, sqlite3* db, const char* name, int pages) {
  auto& c = *static_cast<Checkpointer*>(self);
  std::unique_lock lock(c.mutex_);
  if (pages < c.last_pages_) c.copied_ = 0;  // the WAL started over
  c.last_pages_ = pages;
  if (pages < kCheckpointPages) return SQLITE_OK;
  if (pages < kBackstopPages) {
    if (c.requested_ || c.running_) return SQLITE_OK;
    if (pages - c.copied_ > kCatchUpPages) {
      c.requested_ = true;
      lock.unlock();
      c.wake_.notify_one();
      return SQLITE_OK;
    }
  }
  if (pages >= kBackstopPages) {
    // Past the backstop the writer waits for the thread's copy to end
    // (a checkpoint beside another gets SQLITE_BUSY at once, whatever the
    // busy timeout) and copies the rest itself: it slows down rather than
    // the WAL growing, as it would while a slow disk holds up the thread.
    c.requested_ = false;
    c.idle_.wait(lock, [&c] { return !c.running_; });
  }
  lock.unlock();
  // FULL also waits (the busy timeout) for readers of older snapshots.
  // Below the backstop, PASSIVE: SQLITE_BUSY means the thread is copying
  // right now, and the next commit tries again.
  const int rc = sqlite3_wal_checkpoint_v2(
      db, name, pages >= kBackstopPages ? SQLITE_CHECKPOINT_FULL : SQLITE_CHECKPOINT_PASSIVE,
      nullptr, nullptr);
  if (rc == SQLITE_OK) {
    lock.lock();
    c.copied_ = 0;  // the WAL starts over at the next transaction
  } else if (rc != SQLITE_BUSY) {
    WarnCheckpoint(rc);
  }
  return SQLITE_OK;
}

void Checkpointer::Run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return requested_ || stop_; });
    if (stop_) return;
    requested_ = false;
    running_ = true;
    lock.unlock();
    // PASSIVE never blocks the writer.
    int frames = 0, copied = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_.getHandle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                             &frames, &copied);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      WarnCheckpoint(rc);
    }
    lock.lock();
    running_ = false;
    if (rc == SQLITE_OK) copied_ = copied;
    idle_.notify_all();
  }
}

}  // namespace tp
