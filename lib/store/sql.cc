#include "store/sql.h"

#include <sqlite3.h>

#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <utility>

#include "core/json.h"

namespace tp::sql {

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

namespace {

// Another process held the file past the busy timeout (an operator's
// sqlite3 shell writing, a tool's long transaction): try later.
bool IsBusy(const std::exception& e) {
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
  return sqlite != nullptr &&
         (sqlite->getErrorCode() == SQLITE_BUSY || sqlite->getErrorCode() == SQLITE_LOCKED);
}

std::atomic<std::uint64_t> full_failures{0};

}  // namespace

Status Failed(std::string_view what, const std::exception& e) {
  std::string message = std::string(what) + ": " + e.what();
  if (IsFull(e)) {
    full_failures.fetch_add(1, std::memory_order_relaxed);
    return Status::Unavailable(std::move(message));
  }
  return IsBusy(e) ? Status::Unavailable(std::move(message)) : Status::Error(std::move(message));
}

std::uint64_t FullFailures() { return full_failures.load(std::memory_order_relaxed); }

std::string InsertRows(const char* head, int columns, int rows) {
  std::string row = "(?";
  for (int c = 1; c < columns; ++c) row += ", ?";
  row += ')';
  std::string sql = head;
  for (int i = 0; i < rows; ++i) sql += (i == 0 ? " " : ", ") + row;
  return sql;
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
