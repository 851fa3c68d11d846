// Waiting for the server's answer with a limit (Connection::set_answer_limit):
// libpq's own calls wait as long as the socket stays up, and a server that
// is stopped (SIGSTOP, a frozen VM, a stalled disk) keeps it up: its kernel
// acknowledges what is sent and answers the keepalives.
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>

#include "pg/connection.h"

namespace tp::pg {

namespace {

// The longest single wait on the socket: what TLS has already read and
// decrypted (the rest of a record larger than libpq's buffer) shows on no
// socket, and is read at the next PQconsumeInput().
constexpr std::chrono::milliseconds kPollSlice{50};

}  // namespace

Connection::Deadline Connection::AnswerDeadline() const {
  if (answer_limit_.count() <= 0) return Deadline::max();
  return std::chrono::steady_clock::now() + answer_limit_;
}

void Connection::AwaitAnswer(std::string_view what, Deadline deadline) {
  if (deadline == Deadline::max()) return;
  const auto give_up = [&](const std::string& why) {
    // The statement may still run once the server wakes (a COMMIT sent
    // may commit): the connection is given up, and its session with it.
    broken_ = true;
    return Error(std::string(what) + ": " + why + "; the connection is given up", "08006", true);
  };
  for (;;) {
    // A connection that failed reading: PQgetResult() gives its error at once.
    if (PQconsumeInput(conn_) == 0 || PQisBusy(conn_) == 0) return;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      throw give_up("the server did not answer within " + std::to_string(answer_limit_.count()) +
                    " ms");
    }
    pollfd p{PQsocket(conn_), POLLIN, 0};
    if (p.fd < 0) return;  // gone: PQgetResult() says so
    if (::poll(&p, 1, static_cast<int>(std::min(left, kPollSlice).count())) < 0 && errno != EINTR) {
      throw give_up(std::string("cannot wait for the server's answer: ") + std::strerror(errno));
    }
  }
}

pg_result* Connection::NextResult(std::string_view what, Deadline deadline) {
  AwaitAnswer(what, deadline);
  return PQgetResult(conn_);
}

pg_result* Connection::LastResult(std::string_view what) {
  // As PQexec(): the last result, or the first error (the statements after
  // it in one text are not run); a COPY's start at once. One deadline for
  // them all.
  const Deadline deadline = AnswerDeadline();
  pg_result* last = nullptr;
  try {
    while (pg_result* r = NextResult(what, deadline)) {
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
