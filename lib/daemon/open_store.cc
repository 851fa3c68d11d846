#include "daemon/open_store.h"

#include <spdlog/spdlog.h>

#include "core/clock.h"
#include "pg/url.h"
#include "store/pg_reader.h"
#include "store/pg_store.h"
#include "store/space.h"
#include "store/sqlite_store.h"
#include "store/store_reader.h"

namespace tp {
namespace {

// On PostgreSQL, how long a statement of the loop's session waits for the
// server's answer before its connection is given up (and the call answers
// 503, and the daemon probes the server): a server that is stopped (a
// frozen VM, a stalled disk) keeps the connection up, and the loop would
// wait as long, /healthz and the watchdog's ping with it. (The same limit
// holds for the leases, acks and counts of /metrics, on threads of their
// own, so that a request queued behind them is answered too.) Past the 5 s a
// statement may wait for a lock (lock_timeout), with room for a busy
// server.
constexpr Millis kLoopAnswerLimit{10000};

// What keeps a takeover late on this server, in the log.
void WarnOfLateTakeovers(PgStore& store) {
  if (auto roles = store.OtherDaemonsRoles(); !roles.ok()) {
    spdlog::debug("the other daemons' roles were not read: {}", roles.status().message());
  } else if (!roles->empty()) {
    std::string names;
    for (const std::string& role : *roles) names += (names.empty() ? "" : ", ") + role;
    spdlog::warn(
        "other daemons on this database connect as another role ({}), and this role or "
        "theirs cannot read when the other's sessions started, so a claim of a dead daemon "
        "may be taken over late; connect every daemon as one role, or grant each role "
        "pg_read_all_stats, inherited (docs/scaling.md)",
        names);
  }
  if (auto locks = store.ReadLockTable(); !locks.ok()) {
    spdlog::debug("the server's lock table was not read: {}", locks.status().message());
  } else if (std::string advice = PgStore::LockTableAdvice(*locks); !advice.empty()) {
    spdlog::warn("{}", advice);
  }
}

}  // namespace

StatusOr<OpenedStore> OpenStore(const std::string& database, const RulesInForce& rules) {
  OpenedStore opened;
  if (pg::IsUrl(database)) {
    auto store = PgStore::Open(database, rules);
    if (!store.ok()) return store.status();
    WarnOfLateTakeovers(**store);
    auto reader = PgReader::Open(database, PgReader::kExactCountsUpTo, kLoopAnswerLimit);
    if (!reader.ok()) return reader.status();
    (*store)->SetAnswerLimit(kLoopAnswerLimit);  // after its migrations: they may take long
    opened.pg = store->get();
    opened.store = std::move(*store);
    opened.reader = std::move(*reader);
    return opened;
  }
  auto store = SqliteStore::Open(database, rules);
  if (!store.ok() && store.status().unavailable()) {
    // A full disk (or database_max_size): say so plainly, in one line.
    auto fs = MeasureFilesystem(database);
    return Status::Error(
        "no room to open the database " + database + " (" +
        (fs.ok() ? std::to_string(fs->fs_free) + " bytes free on its disk" : "disk not measured") +
        "): " + store.status().message() + "; free some space, then start touchpointd again");
  }
  if (!store.ok()) return store.status();
  auto reader = StoreReader::Open(database);
  if (!reader.ok()) return reader.status();
  opened.sqlite = store->get();
  opened.store = std::move(*store);
  opened.reader = std::move(*reader);
  return opened;
}

FireThread::OpenStore PgFiringSessions(const std::string& url) {
  return [url](const RulesInForce& own) -> StatusOr<std::unique_ptr<ScheduleStore>> {
    auto opened = PgStore::OpenFiring(url, own);
    if (!opened.ok()) return opened.status();
    return std::unique_ptr<ScheduleStore>(std::move(*opened));
  };
}

IngestBatcher::OpenStore PgIngestSessions(const std::string& url) {
  return [url](const RulesInForce& own) -> StatusOr<std::unique_ptr<Store>> {
    auto session = PgStore::Open(url, own, "touchpointd-ingest");
    if (!session.ok()) return session.status();
    return std::unique_ptr<Store>(std::move(*session));
  };
}

Replanner::OpenStore PgReplanSessions(const std::string& url) {
  return [url](const RulesInForce& own) -> StatusOr<std::unique_ptr<ReplanStore>> {
    auto session = PgStore::Open(url, own, "touchpointd-replan");
    if (!session.ok()) return session.status();
    return std::unique_ptr<ReplanStore>(std::move(*session));
  };
}

}  // namespace tp
