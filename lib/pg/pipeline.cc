// Connection::RunTogether: statements in libpq's pipeline mode, one round
// trip for them all (pg/connection.h).
#include <libpq-fe.h>

#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "pg/connection.h"
#include "pg/errors.h"

namespace tp::pg {

using detail::Head;
using detail::MakeError;

std::vector<Result> Connection::RunTogether(std::initializer_list<Step> steps) {
  RefuseIfBroken();
  const Waiting waiting(*this);
  for (const Step& step : steps) {  // libpq refuses more, after sending the others
    if (step.params.size() > 65535) {
      throw Error(std::string(Head(step.statement.sql())) + ": more than 65,535 parameters", "",
                  false);
    }
  }
  if (PQenterPipelineMode(conn_) != 1) throw MakeError(conn_, nullptr, "enter pipeline mode");
  // The first error the server gave.
  std::optional<Error> failure;
  // A connection left mid-pipeline serves nothing more: it is taken as
  // lost (ok() says so, and its owner opens another), and the server rolls
  // back what it had of the pipeline when the session ends. The server's
  // own error, if it gave one (a session it ended), says why.
  const auto abandon = [&](std::string_view what) {
    broken_ = true;
    if (failure && (failure->connection_lost() || failure->sqlstate().starts_with("57P0"))) {
      return Error(failure->what(), failure->sqlstate(), /*connection_lost=*/true);
    }
    const Error e = MakeError(conn_, nullptr, what);
    return Error(
        std::string(e.what()) + (failure ? std::string(" (after: ") + failure->what() + ")" : ""),
        e.sqlstate(), /*connection_lost=*/true);
  };
  // What was sent, in order: each statement, after its PREPARE if it has
  // not been prepared on this connection yet.
  struct Sent {
    const Statement* statement;
    bool prepare;
  };
  std::vector<Sent> sent;
  std::unordered_set<std::string> preparing;  // a statement given twice is prepared once
  for (const Step& step : steps) {
    const Statement& st = step.statement;
    const Params& p = step.params;
    if (st.plan() == Statement::Plan::kEachRun) {
      if (PQsendQueryParams(conn_, st.sql().c_str(), p.size(), nullptr, p.values(), p.lengths(),
                            nullptr, 0) != 1) {
        throw abandon(Head(st.sql()));
      }
      sent.push_back({&st, false});
      continue;
    }
    if (prepared_.count(st.name()) == 0 && preparing.insert(st.name()).second) {
      if (PQsendPrepare(conn_, st.name().c_str(), st.sql().c_str(), 0, nullptr) != 1) {
        throw abandon(Head(st.sql()));
      }
      sent.push_back({&st, true});
    }
    if (PQsendQueryPrepared(conn_, st.name().c_str(), p.size(), p.values(), p.lengths(), nullptr,
                            0) != 1) {
      throw abandon(Head(st.sql()));
    }
    sent.push_back({&st, false});
  }
  if (PQpipelineSync(conn_) != 1) throw abandon("pipeline sync");
  const Deadline deadline = AnswerDeadline();  // for the answers to them all
  // Each command's result (or PGRES_PIPELINE_ABORTED, after one that
  // failed), then a null; the sync's at the end. All are read, so that the
  // connection leaves pipeline mode whatever failed.
  std::vector<Result> results;
  for (const Sent& s : sent) {
    pg_result* r = NextResult(Head(s.statement->sql()), deadline);
    if (r == nullptr) throw abandon(Head(s.statement->sql()));  // the connection went
    Result owned(r);
    const ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      if (s.prepare) {
        prepared_.insert(s.statement->name());
      } else {
        results.push_back(std::move(owned));
      }
    } else if (!failure && status != PGRES_PIPELINE_ABORTED) {
      failure = MakeError(conn_, r, Head(s.statement->sql()));
    }
    while (pg_result* extra = NextResult(Head(s.statement->sql()), deadline)) PQclear(extra);
  }
  // Then the sync's result; an error before it is the implicit commit's
  // (a deferred constraint, a serialization failure), followed by a null.
  // More nulls than that, on a connection that says it is up, would be a
  // libpq that lost its place: the connection is given up rather than
  // waited on.
  for (int nulls = 0;;) {
    pg_result* r = NextResult("pipeline sync", deadline);
    if (r == nullptr) {
      if (PQstatus(conn_) != CONNECTION_OK || ++nulls > 2) throw abandon("pipeline sync");
      continue;
    }
    Result owned(r);
    const ExecStatusType status = PQresultStatus(r);
    if (status == PGRES_PIPELINE_SYNC) break;
    if (!failure && status != PGRES_PIPELINE_ABORTED) failure = MakeError(conn_, r, "commit");
  }
  if (PQexitPipelineMode(conn_) != 1) throw abandon("leave pipeline mode");
  if (failure) throw *failure;
  return results;
}

}  // namespace tp::pg
