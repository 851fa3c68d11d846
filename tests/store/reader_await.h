// What a store reader's job (store/store_reads.h) gives, waited for: the
// tests of StoreReader and PgReader.
#pragma once

#include <future>
#include <utility>

#include "core/status.h"

namespace tp::testing {

// Calls `start` with a `done` callback and waits for what it is given.
template <typename T, typename Start>
StatusOr<T> Await(Start start) {
  std::promise<StatusOr<T>> done;
  start([&done](StatusOr<T> result) { done.set_value(std::move(result)); });
  return done.get_future().get();
}

}  // namespace tp::testing
