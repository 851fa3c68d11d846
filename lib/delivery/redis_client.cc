// Boost 1.74's Asio needs <utility> before it under C++20.
#include <utility>
// (keep the blank line above: clang-format must not reorder this include)

#include <hiredis/hiredis.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cstdlib>

#include "delivery/redis_client.h"

namespace tp {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// RESP for one command, via hiredis.
std::string Format(const RedisClient::Command& command) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const std::string& arg : command) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* out = nullptr;
  const int n =
      redisFormatCommandArgv(&out, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (n < 0 || out == nullptr) throw std::bad_alloc();
  std::string text(out, static_cast<std::size_t>(n));
  redisFreeCommand(out);
  return text;
}

RedisReply Convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_ERROR:
      out.error = true;
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.text.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.text = std::to_string(r->integer);
      break;
    case REDIS_REPLY_ARRAY:
      // (As deep as hiredis's reader lets a reply nest: a few levels.)
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(Convert(r->element[i]));
      break;
    default:
      break;  // nil and the rest: nothing this client's callers read
  }
  return out;
}

}  // namespace

struct RedisClient::Impl : std::enable_shared_from_this<RedisClient::Impl> {
  Impl(asio::io_context& io_context, Url u, Millis t)
      : io(io_context), url(std::move(u)), timeout(t), resolver(io), socket(io), timer(io) {}
  ~Impl() {
    if (reader != nullptr) redisReaderFree(reader);
  }

  asio::io_context& io;
  Url url;
  Millis timeout;
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer timer;
  redisReader* reader = nullptr;
  bool connected = false;
  bool timed_out = false;

  std::string out;
  std::size_t skip = 0;    // replies of AUTH/SELECT to check, not to return
  std::size_t wanted = 0;  // replies still to read
  std::vector<RedisReply> replies;
  Done done;
  char buffer[16 * 1024] = {};

  void Start(std::vector<Command> commands, Done callback) {
    done = std::move(callback);
    replies.clear();
    out.clear();
    skip = 0;
    timed_out = false;
    if (!connected) {
      if (!url.password.empty()) {
        out += Format(url.user.empty() ? Command{"AUTH", url.password}
                                       : Command{"AUTH", url.user, url.password});
        ++skip;
      }
      if (url.database != 0) {
        out += Format({"SELECT", std::to_string(url.database)});
        ++skip;
      }
    }
    for (const Command& c : commands) out += Format(c);
    wanted = skip + commands.size();
    timer.expires_after(timeout);
    timer.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      self->timed_out = true;
      self->resolver.cancel();
      self->Abort();
    });
    if (connected) return Write();
    resolver.async_resolve(
        url.host, std::to_string(url.port),
        [self = shared_from_this()](const boost::system::error_code& ec,
                                    const tcp::resolver::results_type& results) {
          if (ec) return self->Fail("resolve " + self->url.host, ec);
          asio::async_connect(self->socket, results,
                              [self](const boost::system::error_code& cec, const tcp::endpoint&) {
                                if (cec) return self->Fail("connect " + self->url.Authority(), cec);
                                self->connected = true;
                                if (self->reader != nullptr) redisReaderFree(self->reader);
                                self->reader = redisReaderCreate();
                                self->Write();
                              });
        });
  }

  void Write() {
    asio::async_write(
        socket, asio::buffer(out),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          if (ec) return self->Fail("send", ec);
          self->Read();
        });
  }

  void Read() {
    socket.async_read_some(
        asio::buffer(buffer),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          if (ec) return self->Fail("read", ec);
          self->Parse(n);
        });
  }

  void Parse(std::size_t n) {
    if (redisReaderFeed(reader, buffer, n) != REDIS_OK) {
      return FailWith(Status::Error(std::string("bad reply: ") + reader->errstr));
    }
    while (wanted > 0) {
      void* raw = nullptr;
      if (redisReaderGetReply(reader, &raw) != REDIS_OK) {
        return FailWith(Status::Error(std::string("bad reply: ") + reader->errstr));
      }
      if (raw == nullptr) break;
      RedisReply reply = Convert(static_cast<redisReply*>(raw));
      freeReplyObject(raw);
      --wanted;
      if (skip > 0) {
        --skip;
        if (reply.error) return FailWith(Status::Error("redis refused the login: " + reply.text));
        continue;
      }
      replies.push_back(std::move(reply));
    }
    if (wanted > 0) return Read();
    timer.cancel();
    Finish(Status::Ok());
  }

  void Fail(const std::string& what, const boost::system::error_code& ec) {
    FailWith(Status::Error(timed_out ? what + ": timed out after " +
                                           std::to_string(timeout.count()) + " ms"
                                     : what + ": " + ec.message()));
  }

  void FailWith(Status status) {
    timer.cancel();
    Abort();
    Finish(std::move(status));
  }

  // A batch given up (timed out, or its connection failed) may still sit in
  // the kernel's send buffer, to reach Redis once a cut network heals:
  // after the batches sent since, by this daemon or the sink's next
  // deliverer, and out of their order. Reset, not closed: the kernel drops
  // what it had not sent.
  void Abort() {
    boost::system::error_code ignored;
    if (socket.is_open()) socket.set_option(asio::socket_base::linger(true, 0), ignored);
    Disconnect();
  }

  void Disconnect() {
    boost::system::error_code ignored;
    socket.close(ignored);
    connected = false;
  }

  void Finish(Status status) {
    Done callback = std::move(done);
    done = nullptr;
    if (callback) callback(std::move(status), std::move(replies));
  }
};

RedisClient::RedisClient(asio::io_context& io, Url url, Millis timeout)
    : impl_(std::make_shared<Impl>(io, std::move(url), timeout)) {}

RedisClient::~RedisClient() { Close(); }

void RedisClient::Pipeline(std::vector<Command> commands, Done done) {
  impl_->Start(std::move(commands), std::move(done));
}

void RedisClient::Close() { impl_->Disconnect(); }

}  // namespace tp
