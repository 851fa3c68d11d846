// What every backend of the store shares about its rows: times as UTC
// milliseconds, states as their enum's value, zones by name, and maps keyed
// by name. No database here: the SQLite files (sql.h) and the PostgreSQL
// ones (store/pg/) both read and write through these. Internal to lib/store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/model.h"
#include "core/time.h"

namespace tp::sql {

// Times are UTC milliseconds.
inline std::int64_t Ms(Instant t) { return t.time_since_epoch().count(); }
inline Instant FromMs(std::int64_t ms) { return Instant(Millis(ms)); }

// States are stored as their enum's value.
inline int StateCode(TouchpointState s) { return static_cast<int>(s); }
TouchpointState StateFrom(int code);

// `bytes` random bytes as hex (a lease's receipt). Throws if the system
// has no randomness.
std::string RandomHex(std::size_t bytes);

// A queue message's receipt, "<row id>.<lease's random part>": the two
// parts, or nullopt if it is not one (the id must be 1 to 18 digits with no
// leading zero, the random part lowercase hex, as RandomHex writes it: so
// nothing else, a NUL among it, reaches a statement).
struct Receipt {
  std::int64_t id = 0;
  std::string_view id_digits;
  std::string_view token;
};
std::optional<Receipt> SplitReceipt(std::string_view receipt);

// Lets maps keyed by std::string be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view v) const { return std::hash<std::string_view>{}(v); }
};

// Zones by name, as rows name them; one per connection's thread.
class ZoneCache {
 public:
  // UTC if tzdata lost the name: UTC beats failing.
  const Zone* Named(std::string_view name);

 private:
  std::unordered_map<std::string, const Zone*, StringHash, std::equal_to<>> zones_;
};

}  // namespace tp::sql
