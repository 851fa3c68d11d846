// The threads a call was made on, noted from any thread, for a test to
// wait for: whether a component calls its store on its own thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace tp::testing {

class CalledOn {
 public:
  // Notes the calling thread.
  void Note() {
    const std::lock_guard lock(mutex_);
    threads_.push_back(std::this_thread::get_id());
    noted_.notify_all();
  }
  // The threads noted, once there is one (or `within` has passed).
  std::vector<std::thread::id> Wait(std::chrono::seconds within = std::chrono::seconds(10)) {
    std::unique_lock lock(mutex_);
    noted_.wait_for(lock, within, [&] { return !threads_.empty(); });
    return threads_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable noted_;
  std::vector<std::thread::id> threads_;
};

}  // namespace tp::testing
