// What lib/pg's files share of building errors (not part of its interface).
#pragma once

#include <string>
#include <string_view>

#include "pg/connection.h"

namespace tp::pg::detail {

// An Error for `what` from `r` (or, without one, from the connection's
// last message): its SQLSTATE, and whether the connection is gone.
Error MakeError(pg_conn* conn, const pg_result* r, std::string_view what);
// libpq's message on one line: its lines joined by "; ".
std::string OneLine(std::string_view message);
// A statement's first words, which name it in a message; the rest is noise.
std::string_view Head(std::string_view sql);

}  // namespace tp::pg::detail
