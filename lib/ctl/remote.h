// touchpointctl's commands that talk to a running daemon over its HTTP API.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "core/status.h"

namespace tp {

// Where the daemon is, and the API token if it wants one.
struct Remote {
  std::string url;    // http://HOST:PORT
  std::string token;  // sent as a bearer token when not empty
};

// The token from `token_file` (its first line that is not blank or a '#'
// comment), else from $TOUCHPOINT_TOKEN, else none.
StatusOr<std::string> ResolveToken(const std::string& token_file);

struct ImportOptions {
  // Purchases (POST /v1/purchases) or engagement events (POST /v1/events).
  enum class Kind : std::uint8_t { kPurchases, kEvents };
  Remote remote;
  Kind kind = Kind::kPurchases;
  std::string path;  // the CSV
  std::size_t batch = 1000;
  // The terminal's columns, to redraw one progress line fitted to it; 0
  // when not a terminal: a progress line about every 10% instead.
  int terminal_width = 0;
  // How long to keep sending a batch again while the daemon cannot take it
  // for now: it answers 503 (its database restarts, its disk is full;
  // waiting its Retry-After between tries), or, once it has answered this
  // import, cannot be reached (it restarts; waiting 1 s, doubling to 10 s).
  // Counted from the batch's first failure; zero: no retry. Sending a batch
  // again is safe: ids make it idempotent (what was recorded the first
  // time counts as duplicates).
  std::chrono::seconds retry_for{600};
};

struct ImportResult {
  std::size_t lines = 0;  // data lines read
  std::size_t accepted = 0;
  std::size_t duplicates = 0;
  // "FILE:LINE: field 'NAME': problem", in line order.
  std::vector<std::string> rejected;
};

// Streams the CSV into POST /v1/purchases (columns order_id, buyer_id,
// product, quantity, amount, purchased_at, timezone) or POST /v1/events
// (event_id, buyer_id, type, at, touchpoint_id) in batches. A row the daemon
// rejects (400 names its index and field, 409 a conflicting id) is
// reported with its line number and the rest of its batch is sent again, so
// one bad row costs nothing else. A batch the daemon cannot take for now is
// sent again (ImportOptions::retry_for), each wait said on `progress`. The
// status is an error only when the daemon cannot be talked to (past those
// retries), or the file cannot be read; the result then says how far the
// import got.
Status Import(const ImportOptions& options, ImportResult& result, std::ostream& progress);

// GET /v1/buyers/ID rendered for people: purchases, then every touchpoint with
// its status and, when not fired, the reason. `json` prints the raw answer.
Status ShowBuyer(const Remote& remote, const std::string& buyer_id, bool json, std::ostream& out);

// GET /v1/reports/outcomes with the query's parameters (each may be empty:
// the daemon's default), as a table (ctl/outcome_table.h) or, with `json`,
// the API's JSON.
struct OutcomeReportQuery {
  std::string from, to, as_of, by;
};
Status ShowOutcomes(const Remote& remote, const OutcomeReportQuery& query, bool json,
                    std::ostream& out);

// GET /v1/dead-letters, every page, as a table (or JSON lines with `json`),
// of `sink` only when it is not empty.
Status ListDeadLetters(const Remote& remote, const std::string& sink, bool json, std::ostream& out);

// Replays the dead letters `ids`, or with `all` every one (of `sink` when it
// is not empty). An unknown id is an error after the others are replayed.
Status ReplayDeadLetters(const Remote& remote, const std::vector<std::string>& ids, bool all,
                         const std::string& sink, std::ostream& out);

}  // namespace tp
