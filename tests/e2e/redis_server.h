// Test support: a real redis-server on a loopback port, in a test's
// directory, and what its streams hold (through hiredis).
#pragma once

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <map>
#include <string>
#include <vector>

#include "child_process.h"

namespace tp::testing {

class RedisServer {
 public:
  void Start(const std::string& dir, int port, const std::string& password = "") {
    port_ = port;
    password_ = password;
    std::vector<std::string> argv{"redis-server",
                                  "--port",
                                  std::to_string(port),
                                  "--bind",
                                  "127.0.0.1",
                                  "--save",
                                  "",
                                  "--appendonly",
                                  "no",
                                  "--dir",
                                  dir};
    if (!password.empty()) argv.insert(argv.end(), {"--requirepass", password});
    process_.Start(argv, dir + "/redis-" + std::to_string(port) + ".log");
    process_.WaitFor("Ready to accept connections");
  }
  void Stop() { process_.Stop(); }

  // XRANGE stream - + in database `db`: each entry's fields as a map.
  std::vector<std::map<std::string, std::string>> Entries(const std::string& stream, int db = 0) {
    std::vector<std::map<std::string, std::string>> out;
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (c == nullptr || c->err) {
      ADD_FAILURE() << "cannot connect to redis";
      if (c != nullptr) redisFree(c);
      return out;
    }
    if (!password_.empty()) freeReplyObject(redisCommand(c, "AUTH %s", password_.c_str()));
    freeReplyObject(redisCommand(c, "SELECT %d", db));
    auto* reply = static_cast<redisReply*>(redisCommand(c, "XRANGE %s - +", stream.c_str()));
    if (reply != nullptr && reply->type == REDIS_REPLY_ARRAY) {
      for (std::size_t i = 0; i < reply->elements; ++i) {
        const redisReply* fields = reply->element[i]->element[1];
        auto& entry = out.emplace_back();
        for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
          entry[fields->element[f]->str] = fields->element[f + 1]->str;
        }
      }
    }
    if (reply != nullptr) freeReplyObject(reply);
    redisFree(c);
    return out;
  }

  // `command` (words separated by spaces): its answer as text (a string,
  // status, error or integer reply; empty for others).
  std::string Command(const std::string& command) {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (c == nullptr || c->err) {
      ADD_FAILURE() << "cannot connect to redis";
      if (c != nullptr) redisFree(c);
      return "";
    }
    if (!password_.empty()) freeReplyObject(redisCommand(c, "AUTH %s", password_.c_str()));
    std::string out;
    auto* r = static_cast<redisReply*>(redisCommand(c, command.c_str()));
    if (r != nullptr && r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
    if (r != nullptr && r->str != nullptr) out.assign(r->str, r->len);
    if (r != nullptr) freeReplyObject(r);
    redisFree(c);
    return out;
  }
  // INFO memory's used_memory, in bytes.
  std::int64_t UsedMemory() {
    const std::string info = Command("INFO memory");
    const auto at = info.find("used_memory:");
    if (at == std::string::npos) return -1;
    return std::stoll(info.substr(at + 12));
  }

  // A consumer group read, as docs/queues.md shows: the ids of what it got.
  std::vector<std::string> ReadAsGroup(const std::string& stream) {
    std::vector<std::string> ids;
    redisContext* c = redisConnect("127.0.0.1", port_);
    auto* r = static_cast<redisReply*>(
        redisCommand(c, "XGROUP CREATE %s senders 0 MKSTREAM", stream.c_str()));
    freeReplyObject(r);
    r = static_cast<redisReply*>(redisCommand(
        c, "XREADGROUP GROUP senders worker-1 COUNT 100 STREAMS %s >", stream.c_str()));
    if (r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
      const redisReply* entries = r->element[0]->element[1];
      for (std::size_t i = 0; i < entries->elements; ++i) {
        const redisReply* entry = entries->element[i];
        auto* ack = static_cast<redisReply*>(
            redisCommand(c, "XACK %s senders %s", stream.c_str(), entry->element[0]->str));
        freeReplyObject(ack);
        const redisReply* fields = entry->element[1];
        for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
          if (std::string(fields->element[f]->str) == "id")
            ids.push_back(fields->element[f + 1]->str);
        }
      }
    }
    freeReplyObject(r);
    redisFree(c);
    return ids;
  }

 private:
  ChildProcess process_;
  int port_ = 0;
  std::string password_;
};

}  // namespace tp::testing
