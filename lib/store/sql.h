// What every file of the SQLite store shares (beside values.h): text
// binding, SQLite's exceptions as a Status, row ids as JSON arrays,
// multi-row INSERTs. Internal to lib/store.
//
// Statements are reset with tryReset() before use: after a failed step,
// reset() would throw that step's error again and fail the next call too.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/time.h"
#include "scheduler/store.h"
#include "store/values.h"

namespace tp::sql {

// As TEXT: SQLiteCpp's (pointer, size) overload would bind a BLOB, and a
// BLOB never equals a TEXT, so literals in SQL would not match it.
inline void BindText(SQLite::Statement& q, int index, std::string_view text) {
  q.bind(index, std::string(text));
}
// NULL for an empty text.
void BindTextOrNull(SQLite::Statement& q, int index, std::string_view text);
// "" for NULL.
inline std::string Text(const SQLite::Column& c) {
  return c.isNull() ? std::string() : c.getString();
}
// The column's bytes, valid until the statement steps or resets.
inline std::string_view TextView(const SQLite::Column& c) {
  return {static_cast<const char*>(c.getBlob()), static_cast<std::size_t>(c.getBytes())};
}

// Whether `e` says the disk (or database_max_size) is full.
bool IsFull(const std::exception& e);
// An exception as a Status naming `what`: Unavailable when the disk is
// full (the same call may work once space returns) or the file is locked
// by another process past the busy timeout, an Error otherwise.
Status Failed(std::string_view what, const std::exception& e);
// How many of Failed()'s failures in this process were a full disk (or
// database_max_size), not a lock: the two are both Unavailable, and only
// the first is the space watch's business. Any thread.
std::uint64_t FullFailures();
// Runs `fn`, turning SQLite's exceptions into a Status naming `what`.
template <typename Fn>
auto Guard(const char* what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Failed(what, e);
  }
}

// Names as a JSON array of strings, for `IN (SELECT value FROM
// json_each(?))`.
std::string JsonStrings(std::span<const std::string> names);

// Row ids as a JSON array, for `IN (SELECT value FROM json_each(?))`: one
// statement for a whole batch. Add() ids, then Close() for the text.
class IdList {
 public:
  void Add(std::int64_t id) {
    text_ += text_.empty() ? '[' : ',';
    text_ += std::to_string(id);
  }
  // Appends an id already spelt as digits.
  void AddDigits(std::string_view digits) {
    text_ += text_.empty() ? '[' : ',';
    text_ += digits;
  }
  // The array; "[]" when nothing was added. Nothing may be added after.
  const std::string& Close() {
    if (!closed_) text_ += text_.empty() ? "[]" : "]";
    closed_ = true;
    return text_;
  }

 private:
  std::string text_;
  bool closed_ = false;
};

// Rows inserted kRowsPerInsert per statement: one statement per row costs
// about as much again as the row.
inline constexpr int kRowsPerInsert = 32;
// "HEAD (?, ?), (?, ?)...": `rows` rows of `columns` parameters.
std::string InsertRows(const char* head, int columns, int rows);
// Inserts `count` rows with `many` (kRowsPerInsert rows a statement), the
// rest with `one`; bind(statement, first parameter, row) binds a row.
template <typename Bind>
void InsertMany(SQLite::Statement& many, SQLite::Statement& one, std::size_t count, int columns,
                Bind bind) {
  std::size_t i = 0;
  for (; i + kRowsPerInsert <= count; i += kRowsPerInsert) {
    many.tryReset();
    for (int k = 0; k < kRowsPerInsert; ++k) bind(many, columns * k + 1, i + k);
    many.exec();
  }
  for (; i < count; ++i) {
    one.tryReset();
    bind(one, 1, i);
    one.exec();
  }
}

}  // namespace tp::sql
