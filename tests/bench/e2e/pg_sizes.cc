// The PostgreSQL side of the `pending` figure (pending_figure.cc): the WAL's
// position, and each table's and index's size with a VACUUM's time, for the
// capacity plan (docs/scaling.md).
#include "figures.h"

namespace tp::e2e {

std::string PgWalPosition(const Daemon& daemon) {
  try {
    auto c = tp::pg::Connection::Open(daemon.database(), "touchpoint-bench");
    return std::string(c->Exec("SELECT pg_current_wal_lsn()::text").Text(0, 0));
  } catch (const std::exception& e) {
    Fail("PostgreSQL: " + std::string(e.what()));
  }
}

std::uintmax_t PgSizes(const Daemon& daemon, const IngestResult& r, const std::string& wal_before) {
  const auto touchpoints = static_cast<double>(r.touchpoints);
  const auto purchases = static_cast<double>(r.purchases);
  try {
    auto c = tp::pg::Connection::Open(daemon.database(), "touchpoint-bench");
    const double wal = std::stod(std::string(
        c->Exec("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '" + wal_before + "')").Text(0, 0)));
    const auto vacuum_start = Steady::now();
    c->Exec("VACUUM (ANALYZE) touchpoints");
    const double vacuum_s = Seconds(Steady::now() - vacuum_start);
    c->Exec("CHECKPOINT");
    tp::pg::Result rel = c->Exec(
        "SELECT c.relname, c.relkind, pg_relation_size(c.oid) + COALESCE((SELECT "
        "pg_total_relation_size(c.reltoastrelid) WHERE c.reltoastrelid <> 0), 0) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND "
        "c.relkind IN ('r', 'i') ORDER BY 3 DESC");
    for (int i = 0; i < rel.rows(); ++i) {
      const double b = static_cast<double>(rel.Int64(i, 2));
      if (b < 65536) continue;
      Note("pending: " + std::string(rel.Text(i, 1) == "i" ? "index " : "table ") +
           std::string(rel.Text(i, 0)) + " " + std::to_string(static_cast<std::int64_t>(b)) +
           " bytes, " + std::to_string(b / touchpoints) + " per touchpoint, " +
           std::to_string(b / purchases) + " per purchase");
    }
    const auto total = static_cast<std::uintmax_t>(
        c->Exec("SELECT pg_database_size(current_database())").Int64(0, 0));
    Note("pending: WAL " + std::to_string(static_cast<std::int64_t>(wal)) + " bytes (" +
         std::to_string(wal / touchpoints) + " per touchpoint); VACUUM (ANALYZE) touchpoints " +
         std::to_string(vacuum_s) + " s");
    Metric("pg_wal_bytes_per_touchpoint", wal / touchpoints, "B");
    Metric("pg_vacuum_touchpoints_s", vacuum_s, "s");
    return total;
  } catch (const std::exception& e) {
    Fail("PostgreSQL: " + std::string(e.what()));
  }
}

}  // namespace tp::e2e
