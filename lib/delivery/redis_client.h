// A small asynchronous Redis client on the caller's io_context: commands go
// out pipelined on one connection, formatted and parsed by hiredis (its RESP
// writer and reader), with Asio doing the I/O, so nothing blocks the loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "core/url.h"

namespace boost::asio {
class io_context;
}

namespace tp {

struct RedisReply {
  bool error = false;                // an error reply (the command failed; the connection is fine)
  std::string text;                  // a string, status or error reply; an integer in decimal
  std::vector<RedisReply> elements;  // an array reply's (EXEC's: each command's)
};

class RedisClient {
 public:
  using Command = std::vector<std::string>;
  // `done` gets one reply per command in order, or a Status when the
  // connection failed (then any of the commands may or may not have run).
  using Done = std::function<void(Status, std::vector<RedisReply>)>;

  // Connects lazily on the first Pipeline(), authenticating (AUTH) and
  // selecting the URL's database first. `timeout` bounds each pipeline,
  // connecting included.
  RedisClient(boost::asio::io_context& io, Url url, Millis timeout);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // One pipeline at a time: call again only after `done` ran.
  void Pipeline(std::vector<Command> commands, Done done);
  void Close();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tp
