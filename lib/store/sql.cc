#include "store/sql.h"

#include <openssl/rand.h>
#include <sqlite3.h>

#include <stdexcept>
#include <utility>

#include "core/json.h"

namespace tp::sql {

TouchpointState StateFrom(int code) {
  return code >= 0 && code <= StateCode(TouchpointState::kDead) ? static_cast<TouchpointState>(code)
                                                                : TouchpointState::kDead;
}

void BindTextOrNull(SQLite::Statement& q, int index, std::string_view text) {
  if (text.empty()) {
    q.bind(index);
  } else {
    BindText(q, index, text);
  }
}

bool IsFull(const std::exception& e) {
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
  return sqlite != nullptr && sqlite->getErrorCode() == SQLITE_FULL;
}

Status Failed(std::string_view what, const std::exception& e) {
  std::string message = std::string(what) + ": " + e.what();
  return IsFull(e) ? Status::Unavailable(std::move(message)) : Status::Error(std::move(message));
}

std::string RandomHex(std::size_t bytes) {
  unsigned char buf[32];
  if (bytes > sizeof buf || RAND_bytes(buf, static_cast<int>(bytes)) != 1) {
    throw std::runtime_error("no randomness for a receipt");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t i = 0; i < bytes; ++i) {
    out += kHex[buf[i] >> 4];
    out += kHex[buf[i] & 15];
  }
  return out;
}

std::string InsertRows(const char* head, int columns, int rows) {
  std::string row = "(?";
  for (int c = 1; c < columns; ++c) row += ", ?";
  row += ')';
  std::string sql = head;
  for (int i = 0; i < rows; ++i) sql += (i == 0 ? " " : ", ") + row;
  return sql;
}

const Zone* ZoneCache::Named(std::string_view name) {
  auto it = zones_.find(name);
  if (it != zones_.end()) return it->second;
  const std::string key(name);
  const Zone* zone = FindZone(key);
  if (zone == nullptr) zone = UtcZone();
  zones_.emplace(key, zone);
  return zone;
}

std::string JsonStrings(std::span<const std::string> names) {
  std::string out = "[";
  for (const std::string& n : names) {
    if (out.size() > 1) out += ',';
    AppendJsonString(out, n);
  }
  return out + "]";
}

}  // namespace tp::sql
