// Preloaded (LD_PRELOAD) into every process of a test run by
// tests/clock/run_at.sh: moves the wall clock $TP_CLOCK_SHIFT_S seconds
// away, so the whole suite (the test binary, the daemons it starts,
// touchpointctl, python, openssl, node) runs at another moment of the year,
// all processes agreeing on the time. Monotonic clocks are left alone, so
// timers, timeouts and sleeps behave as they do without it.
#include <dlfcn.h>
#include <sys/time.h>

#include <cstdlib>
#include <ctime>

namespace {

long long Shift() {
  static const long long seconds = [] {
    const char* text = std::getenv("TP_CLOCK_SHIFT_S");
    return text != nullptr ? std::strtoll(text, nullptr, 10) : 0LL;
  }();
  return seconds;
}

bool IsWallClock(clockid_t clock) {
  return clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE || clock == CLOCK_TAI;
}

template <typename Fn>
Fn Next(const char* name) {
  return reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, name));
}

}  // namespace

extern "C" int clock_gettime(clockid_t clock, struct timespec* ts) noexcept {
  static const auto real = Next<int (*)(clockid_t, struct timespec*)>("clock_gettime");
  const int rc = real(clock, ts);
  if (rc == 0 && IsWallClock(clock)) ts->tv_sec += static_cast<time_t>(Shift());
  return rc;
}

extern "C" int gettimeofday(struct timeval* __restrict tv, void* __restrict tz) noexcept {
  static const auto real = Next<int (*)(struct timeval*, void*)>("gettimeofday");
  const int rc = real(tv, tz);
  if (rc == 0) tv->tv_sec += static_cast<time_t>(Shift());
  return rc;
}

extern "C" time_t time(time_t* out) noexcept {
  struct timespec ts {};
  clock_gettime(CLOCK_REALTIME, &ts);
  if (out != nullptr) *out = ts.tv_sec;
  return ts.tv_sec;
}
