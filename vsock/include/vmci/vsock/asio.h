// asio.h: vSockets streams for Boost.Asio. `stream` meets Asio's
// AsyncReadStream, AsyncWriteStream, SyncReadStream and SyncWriteStream, so
// asio::async_read, async_write, read_until, buffered streams and
// coroutines work on it as on asio::local::stream_protocol::socket;
// `acceptor` hands out streams with async_accept. Header-only: include it
// where Boost.Asio is available.
//
// Nothing polls: an operation that cannot finish now waits for the
// connection's next WROTE, READ, shutdown or detach (Stream::when_ready),
// holding work on the executor meanwhile. Closing or destroying a stream
// or acceptor completes its operations with asio::error::operation_aborted.
// Errors are errno values in boost::system::generic_category; the end of
// the stream is asio::error::eof.
//
//   boost::asio::io_context io;
//   vmci::vsock::asio::acceptor acceptor(io.get_executor(), vsock->listen(1234, 16, ec));
//   acceptor.async_accept([&](boost::system::error_code ec, vmci::vsock::asio::stream s) {
//     ...boost::asio::async_read(s, boost::asio::buffer(buf), handler)...
//   });
//   io.run();
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <memory>
#include <utility>

#include "vmci/vsock/transport.h"

namespace vmci::vsock::asio {

namespace internal {

inline boost::system::error_code to_boost(const std::error_code& ec) {
  return ec ? boost::system::error_code(ec.value(), boost::system::generic_category())
            : boost::system::error_code();
}

// What a stream's operations share with it: they may outlive the stream.
struct StreamCore {
  std::unique_ptr<Stream> native;
  std::atomic<bool> closed{false};
};

}  // namespace internal

class stream {
 public:
  using executor_type = boost::asio::any_io_executor;

  stream(executor_type executor, std::unique_ptr<Stream> native)
      : executor_(std::move(executor)), core_(std::make_shared<internal::StreamCore>()) {
    core_->native = std::move(native);
  }
  stream(stream&&) noexcept = default;
  stream& operator=(stream&& other) noexcept {
    close();
    executor_ = std::move(other.executor_);
    core_ = std::move(other.core_);
    return *this;
  }
  ~stream() { close(); }

  executor_type get_executor() { return executor_; }
  bool is_open() const { return core_ && !core_->closed; }
  Stream& native() { return *core_->native; }

  // Closes the connection; pending operations end with operation_aborted.
  void close() {
    if (!core_ || !core_->native || core_->closed.exchange(true)) return;
    core_->native->close();
  }

  template <typename MutableBufferSequence>
  size_t read_some(const MutableBufferSequence& buffers, boost::system::error_code& ec) {
    const boost::asio::mutable_buffer b = first(buffers);
    std::error_code e;
    const size_t n = core_->native->read_some(b.data(), b.size(), std::nullopt, e);
    ec = n == 0 && !e && b.size() > 0 ? boost::asio::error::eof : internal::to_boost(e);
    return n;
  }
  template <typename ConstBufferSequence>
  size_t write_some(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
    const boost::asio::const_buffer b = first_const(buffers);
    std::error_code e;
    const size_t n = core_->native->write_some(b.data(), b.size(), std::nullopt, e);
    ec = internal::to_boost(e);
    return n;
  }

  template <typename MutableBufferSequence, typename ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return boost::asio::async_initiate<ReadToken, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, boost::asio::mutable_buffer b) {
          start(std::move(handler), b.data(), b.size(), Stream::Wait::kRead);
        },
        token, first(buffers));
  }
  template <typename ConstBufferSequence, typename WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return boost::asio::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, boost::asio::const_buffer b) {
          start(std::move(handler), const_cast<void*>(b.data()), b.size(), Stream::Wait::kWrite);
        },
        token, first_const(buffers));
  }

 private:
  template <typename Buffers>
  static boost::asio::mutable_buffer first(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::mutable_buffer b(*it);
      if (b.size() > 0) return b;
    }
    return {};
  }
  template <typename Buffers>
  static boost::asio::const_buffer first_const(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers); ++it) {
      boost::asio::const_buffer b(*it);
      if (b.size() > 0) return b;
    }
    return {};
  }

  // One read or write in progress: retried each time the connection
  // changes, until it can finish.
  template <typename Handler>
  struct Op {
    Op(Handler h, const executor_type& ex)
        : handler(std::move(h)),
          io(ex),
          work(boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked)) {}
    Handler handler;
    executor_type io;
    executor_type work;  // keeps the executor's run() going while it waits
    std::shared_ptr<internal::StreamCore> core;
    void* data = nullptr;
    size_t size = 0;
    Stream::Wait what = Stream::Wait::kRead;
  };

  template <typename Handler>
  void start(Handler handler, void* data, size_t size, Stream::Wait what) {
    auto op = std::make_shared<Op<Handler>>(std::move(handler), executor_);
    op->core = core_;
    op->data = data;
    op->size = size;
    op->what = what;
    boost::asio::post(executor_, [op] { attempt(op); });
  }

  template <typename Handler>
  static void complete(const std::shared_ptr<Op<Handler>>& op, boost::system::error_code ec,
                       size_t n) {
    auto ex = boost::asio::get_associated_executor(op->handler, op->io);
    boost::asio::post(ex, [op, ec, n]() mutable {
      op->work = executor_type();
      std::move(op->handler)(ec, n);
    });
  }

  template <typename Handler>
  static void attempt(const std::shared_ptr<Op<Handler>>& op) {
    if (op->core->closed) {
      complete(op, boost::asio::error::operation_aborted, 0);
      return;
    }
    if (op->size == 0) {
      complete(op, {}, 0);
      return;
    }
    Stream& s = *op->core->native;
    std::error_code e;
    const size_t n = op->what == Stream::Wait::kRead
                         ? s.read_some(op->data, op->size, std::chrono::milliseconds(0), e)
                         : s.write_some(op->data, op->size, std::chrono::milliseconds(0), e);
    if (e == std::errc::resource_unavailable_try_again) {
      auto retry = [op] { boost::asio::post(op->io, [op] { attempt(op); }); };
      if (!s.when_ready(op->what, retry)) retry();  // ready already: at once
      return;
    }
    boost::system::error_code ec = internal::to_boost(e);
    if (!e && n == 0 && op->what == Stream::Wait::kRead) ec = boost::asio::error::eof;
    complete(op, ec, n);
  }

  executor_type executor_;
  std::shared_ptr<internal::StreamCore> core_;
};

class acceptor {
 public:
  using executor_type = boost::asio::any_io_executor;

  acceptor(executor_type executor, std::unique_ptr<Listener> listener)
      : executor_(std::move(executor)), core_(std::make_shared<Core>()) {
    core_->listener = std::move(listener);
  }
  acceptor(acceptor&&) noexcept = default;
  ~acceptor() { close(); }

  executor_type get_executor() { return executor_; }
  Listener& native() { return *core_->listener; }
  void close() {
    if (!core_ || core_->closed.exchange(true)) return;
    core_->listener->close();
  }

  // Completes with the next established connection, as a stream on this
  // acceptor's executor.
  template <typename AcceptToken>
  auto async_accept(AcceptToken&& token) {
    return boost::asio::async_initiate<AcceptToken, void(boost::system::error_code, stream)>(
        [this](auto handler) {
          using Handler = decltype(handler);
          auto op = std::make_shared<Op<Handler>>(std::move(handler), executor_);
          op->core = core_;
          boost::asio::post(executor_, [op] { attempt(op); });
        },
        token);
  }

 private:
  struct Core {
    std::unique_ptr<Listener> listener;
    std::atomic<bool> closed{false};
  };
  template <typename Handler>
  struct Op {
    Op(Handler h, const executor_type& ex)
        : handler(std::move(h)),
          io(ex),
          work(boost::asio::prefer(ex, boost::asio::execution::outstanding_work.tracked)) {}
    Handler handler;
    executor_type io;
    executor_type work;
    std::shared_ptr<Core> core;
  };

  template <typename Handler>
  static void complete(const std::shared_ptr<Op<Handler>>& op, boost::system::error_code ec,
                       std::unique_ptr<Stream> native) {
    auto ex = boost::asio::get_associated_executor(op->handler, op->io);
    auto shared = std::make_shared<std::unique_ptr<Stream>>(std::move(native));
    boost::asio::post(ex, [op, ec, shared]() mutable {
      op->work = executor_type();
      std::move(op->handler)(ec, stream(op->io, std::move(*shared)));
    });
  }

  template <typename Handler>
  static void attempt(const std::shared_ptr<Op<Handler>>& op) {
    if (op->core->closed) {
      complete(op, boost::asio::error::operation_aborted, nullptr);
      return;
    }
    std::error_code e;
    auto native = op->core->listener->accept(std::chrono::milliseconds(0), e);
    if (e == std::errc::resource_unavailable_try_again) {
      auto retry = [op] { boost::asio::post(op->io, [op] { attempt(op); }); };
      if (!op->core->listener->when_ready(retry)) retry();
      return;
    }
    complete(op, internal::to_boost(e), std::move(native));
  }

  executor_type executor_;
  std::shared_ptr<Core> core_;
};

}  // namespace vmci::vsock::asio
