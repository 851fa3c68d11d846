#include "daemon/off_loop.h"

#include <boost/asio/post.hpp>

namespace tp {

void OffLoop::Run(std::function<void()> work, std::function<void()> then) {
  if (away_++ == 0) work_.emplace(io_.get_executor());
  thread_.Post([this, &io = io_, alive = std::weak_ptr<char>(alive_), work = std::move(work),
                then = std::move(then)]() mutable {
    if (!stopping_) work();
    boost::asio::post(io, [this, alive, then = std::move(then)] {
      if (alive.expired()) return;
      if (--away_ == 0) work_.reset();
      then();
    });
  });
}

}  // namespace tp
