// Waiting for the server's answer with a limit (Connection::set_answer_limit):
// libpq's own calls wait as long as the socket stays up, and a server that
// is stopped (SIGSTOP, a frozen VM, a stalled disk) keeps it up: its kernel
// acknowledges what is sent and answers the keepalives.
#include <libpq-fe.h>
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "pg/connection.h"

namespace tp::pg {

void Connection::AwaitAnswer(std::string_view what) {
  if (answer_limit_.count() <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + answer_limit_;
  while (PQisBusy(conn_) != 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      // The statement may still run once the server wakes: the connection
      // is given up, and its session's transaction with it.
      broken_ = true;
      throw Error(std::string(what) + ": the server did not answer within " +
                      std::to_string(answer_limit_.count()) + " ms; the connection is given up",
                  "08006", true);
    }
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (p.fd < 0) return;  // gone: PQgetResult() says so
    const int n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) return;
    // A connection that failed reading: PQgetResult() gives its error at once.
    if (n > 0 && PQconsumeInput(conn_) == 0) return;
  }
}

pg_result* Connection::NextResult(std::string_view what) {
  AwaitAnswer(what);
  return PQgetResult(conn_);
}

pg_result* Connection::LastResult(std::string_view what) {
  // As PQexec(): the last result, or the first error (the statements after
  // it in one text are not run); a COPY's start at once.
  pg_result* last = nullptr;
  try {
    while (pg_result* r = NextResult(what)) {
      if (last != nullptr && PQresultStatus(last) == PGRES_FATAL_ERROR) {
        PQclear(r);
        continue;
      }
      PQclear(last);
      last = r;
      const ExecStatusType s = PQresultStatus(r);
      if (s == PGRES_COPY_IN || s == PGRES_COPY_OUT || s == PGRES_COPY_BOTH) break;
    }
  } catch (...) {
    PQclear(last);
    throw;
  }
  return last;
}

}  // namespace tp::pg
