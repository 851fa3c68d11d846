// The operator's cadence rules, validated and immutable once loaded.
// Cross references (products, tiers, sinks) are resolved to indices into the
// vectors below, so nothing downstream looks a name up twice.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/time.h"

namespace tp {

struct Product {
  std::string name;
  int supply_days = 0;  // per unit; runout = purchase + quantity * supply_days days
};

// A tier's `attributes` condition on one key: the purchase's attributes
// hold `key` as a string equal to one of `values`.
struct AttributeCondition {
  std::string key;
  std::vector<std::string> values;
  friend bool operator==(const AttributeCondition&, const AttributeCondition&) = default;
};

// A tier matches when every condition it states holds (absent ones hold);
// planner/tier.h evaluates them.
struct Tier {
  std::string name;
  std::optional<std::int64_t> min_purchases;  // count so far, this purchase included
  std::optional<double> min_spend;            // total amount so far, this one included
  // Counts purchases (for min_purchases, min_spend and bought) only from
  // (this purchase's purchased_at - within, its purchased_at]; all if unset.
  std::optional<Duration> within;
  std::vector<int> bought;  // products (indices); one must have been bought
  std::vector<AttributeCondition> attributes;

  // Whether every purchase, the buyer's first included, matches it.
  bool MatchesEveryPurchase() const {
    return (!min_purchases || *min_purchases <= 1) && (!min_spend || *min_spend <= 0) &&
           bought.empty() && attributes.empty();
  }
};

enum class Anchor : std::uint8_t { kPurchase, kRunout };
// A step's `when`: decided as it comes due (after the send window and the
// frequency cap). Engaged: the buyer sent a trust-signal event at or after
// the touchpoint's purchase, up to that moment.
enum class When : std::uint8_t { kAlways, kEngaged, kNotEngaged };
enum class Trigger : std::uint8_t { kPurchase, kSwitch };

struct Step {
  std::string id;  // unique within its cadence; defaults to the topic
  std::string topic;
  Duration after;
  Anchor anchor = Anchor::kPurchase;
  std::vector<int> tiers;  // indices into Rules::tiers; empty = every tier
  When when = When::kAlways;
  std::vector<int> sinks;  // indices into Rules::sinks; empty = its cadence's
};

struct Cadence {
  std::string name;
  Trigger trigger = Trigger::kPurchase;
  std::vector<int> products;  // trigger purchase: the products that start it
  std::vector<int> from;      // trigger switch: previous purchase's product
  std::vector<int> to;        // trigger switch: this purchase's product
  bool cancel_on_repurchase = false;
  std::vector<int> sinks;  // indices into Rules::sinks; every sink by default
  // Event types (indices into Rules::engagement_types) that cancel the
  // buyer's pending touchpoints of this cadence.
  std::vector<int> stop_on;
  std::vector<Step> steps;
};

// A webhook's retry schedule (delivery/retry.h applies it).
struct RetryPolicy {
  Millis initial{10'000};       // the delay after the first failed attempt
  Millis max_delay{3'600'000};  // delays double up to this
  int max_attempts = 30;        // the last failure dead-letters
};

// Where fired touchpoints go. A queue is embedded (pulled over HTTP); a
// webhook and a Redis stream are pushed to from a durable outbox.
struct Sink {
  enum class Type : std::uint8_t { kQueue, kWebhook, kRedis };
  std::string name;
  Type type = Type::kQueue;
  std::string url;  // webhook: http(s)://...; redis: redis://host:port/db

  // Webhook.
  std::string secret_file;
  std::vector<std::string> secrets;  // decoded keys, one per line of the file
  Millis timeout{10'000};            // connect, TLS handshake, and the whole exchange
  RetryPolicy retry;
  int concurrency = 16;  // attempts in flight at once
  std::string ca_file;   // trust these CAs instead of the system's
  std::string ca_pem;    // ca_file's certificates, read at each load
  bool tls_verify = true;

  // Redis.
  std::string stream;
  std::optional<std::int64_t> maxlen;  // XADD MAXLEN ~ N when set

  bool IsPush() const { return type != Type::kQueue; }
};

std::string_view SinkTypeName(Sink::Type type);

// An engagement event's type (`engagement: {types, trust}`).
struct EngagementType {
  std::string name;
  bool trust = false;  // a trust signal: the buyer engaging
};

// `outcomes`: the windows of docs/outcomes.md.
struct OutcomeWindows {
  Duration trust_within{10, Duration::Unit::kDays};
  Duration repurchase_grace{0, Duration::Unit::kDays};
  Duration attribution_window{7, Duration::Unit::kDays};
};

// `frequency_cap`: at most `max` touchpoints per buyer per buyer-local
// calendar period (a day, an ISO week from Monday 00:00, a calendar month),
// counting only touchpoints routed to one of `sinks` when it names any.
struct FrequencyCap {
  enum class Per : std::uint8_t { kDay, kWeek, kMonth };
  int max = 1;
  Per per = Per::kDay;
  std::vector<int> sinks;  // indices into Rules::sinks; empty = every sink
};

std::string_view PeriodName(FrequencyCap::Per per);

// [from, to) in buyer-local wall-clock time.
struct SendWindow {
  TimeOfDay from{0};
  TimeOfDay to{24 * 60};
  bool Contains(TimeOfDay t) const { return from <= t && t < to; }
};

// The levels `log: {level}` and --log-level accept (ops/logging.h sets them).
inline constexpr std::string_view kLogLevels[] = {"trace", "debug", "info", "warn", "error"};

struct Rules {
  int version = 1;
  std::string timezone_name = "UTC";
  const Zone* timezone = nullptr;  // default zone for buyers who bring none
  SendWindow send_window;
  std::vector<FrequencyCap> frequency_caps;  // every one must allow a fire
  Duration misfire_grace{1, Duration::Unit::kHours};
  std::string listen = "127.0.0.1:8787";
  std::string database = "/var/lib/touchpoint/touchpoint.db";
  // SQLite's synchronous mode for the daemon's WAL database. kNormal: a
  // commit survives the process being killed, and the last commits may be
  // lost on power loss; no fsync per commit. kFull: an fsync per commit, so
  // commits survive power loss too, at a latency cost per commit.
  enum class DatabaseSync : std::uint8_t { kNormal, kFull };
  DatabaseSync database_sync = DatabaseSync::kNormal;
  // `database_max_size`: the database file may not grow past this; beyond
  // it the daemon works as on a full disk. nullopt: only the disk limits it.
  std::optional<std::uint64_t> database_max_size;
  // How long a client may take to send one request (or keep an idle
  // keep-alive connection) before the daemon closes the connection.
  Duration http_request_timeout{30, Duration::Unit::kSeconds};
  // How many connections the API serves at once; a new one past it takes
  // the place of the one idle longest, or waits in the kernel's backlog
  // while none is. Each may hold a request body of up to 4 MiB.
  std::int64_t http_max_connections = 512;
  // Without auth, the host names (lowercase, no port) /v1/ answers for
  // besides IP addresses and localhost; "*": any (api/v1_gate.h).
  std::vector<std::string> http_allowed_hosts;
  // `log: {level}`: one of kLogLevels.
  std::string log_level = "info";
  // `auth: {token_file}`: when set, every /v1/ request needs
  // "Authorization: Bearer <one of tokens>". Read at start and every reload.
  std::string auth_token_file;
  std::vector<std::string> auth_tokens;
  // `retention: {touchpoints}`: finished touchpoints (fired, cancelled,
  // suppressed, skipped) whose due and fire times are older than this are
  // deleted with their history. nullopt keeps them for ever.
  std::optional<Duration> retention;
  // SHA-256 of the config file's bytes, in hex (for metrics and /healthz).
  std::string sha256;
  std::vector<Product> products;
  std::vector<Tier> tiers;
  std::vector<Cadence> cadences;
  std::vector<Sink> sinks;
  // The event types POST /v1/events takes; by default delivered, read,
  // replied and clicked, the last two trust signals.
  std::vector<EngagementType> engagement_types = {
      {"delivered", false}, {"read", false}, {"replied", true}, {"clicked", true}};
  OutcomeWindows outcomes;

  // Index of the named entity, or -1.
  int ProductIndex(std::string_view name) const;
  int TierIndex(std::string_view name) const;
  int CadenceIndex(std::string_view name) const;
  int EngagementTypeIndex(std::string_view name) const;
  // The sinks a touchpoint of `step` (of `cadence`) is handed to: the
  // step's, else the cadence's, else (rules not from the loader, which
  // fills a cadence's) every sink.
  std::vector<int> SinksOf(const Cadence& cadence, const Step& step) const;
  // Sink names, comma-separated, as a fired touchpoint records where it
  // went (names cannot hold a comma).
  std::string SinkList(const std::vector<int>& sinks) const;
};

}  // namespace tp
