// serve::DeadlineSocket: a TCP socket for Boost.Beast's synchronous HTTP reads and writes whose
// every wait is bounded, so a slow or silent peer cannot hold its caller forever. The server itself
// is asynchronous (serve/server.h); the service tests' and benchmarks' HTTP clients use this.
//
// In/Out: bytes, as Beast's SyncReadStream / SyncWriteStream (read_some, write_some).
// How: the socket is non-blocking; when a read or write would block, poll(2) waits for it at most
//      until the operation's deadline and at most `idle` since the last progress. Running out of
//      either gives beast::error::timeout. A wait marked interruptible also wakes when the
//      server's shutdown pipe becomes readable (asio::error::operation_aborted), so idle
//      kept-alive connections close at once on shutdown while requests in progress finish.
// Threading: one thread uses it; the shutdown pipe is shared (only polled).
#ifndef DEEPSCAN_SERVE_DEADLINE_SOCKET_H_
#define DEEPSCAN_SERVE_DEADLINE_SOCKET_H_

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/error.hpp>

namespace deepscan::serve {

class DeadlineSocket {
 public:
  using Clock = std::chrono::steady_clock;
  enum class Wait { kReady, kTimeout, kInterrupted, kError };

  DeadlineSocket(boost::asio::ip::tcp::socket socket, int shutdown_fd)
      : socket_(std::move(socket)), shutdown_fd_(shutdown_fd) {
    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
  }

  // Bounds for the following reads: finish by `deadline`, never wait longer than `idle` at once.
  void SetReadLimits(Clock::time_point deadline, std::chrono::milliseconds idle) {
    read_deadline_ = deadline;
    read_idle_ = idle;
  }
  void SetWriteLimits(Clock::time_point deadline, std::chrono::milliseconds idle) {
    write_deadline_ = deadline;
    write_idle_ = idle;
  }

  // Waits until the socket is readable (data or EOF), for at most `timeout`; with
  // `interruptible`, also returns kInterrupted when the shutdown pipe is readable (and the socket
  // is not). `stop` (optional) is checked every 100 ms and ends the wait as kInterrupted.
  template <typename StopFn>
  Wait WaitReadable(std::chrono::milliseconds timeout, bool interruptible, StopFn stop) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return Wait::kTimeout;
      pollfd fds[2] = {{socket_.native_handle(), POLLIN, 0}, {shutdown_fd_, POLLIN, 0}};
      const int n = ::poll(fds, interruptible ? 2 : 1, static_cast<int>(std::min<long>(left.count(), 100)));
      if (n < 0 && errno != EINTR) return Wait::kError;
      if (n > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) return Wait::kReady;
      if (n > 0 && interruptible && (fds[1].revents & POLLIN)) return Wait::kInterrupted;
      if (stop()) return Wait::kInterrupted;
    }
  }

  template <typename Buffers>
  size_t read_some(const Buffers& buffers, boost::beast::error_code& ec) {
    while (true) {
      const size_t n = socket_.read_some(buffers, ec);
      if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) return n;
      if (!PollFor(POLLIN, read_deadline_, read_idle_, ec)) return 0;
    }
  }
  template <typename Buffers>
  size_t read_some(const Buffers& buffers) {
    boost::beast::error_code ec;
    const size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  template <typename Buffers>
  size_t write_some(const Buffers& buffers, boost::beast::error_code& ec) {
    while (true) {
      const size_t n = socket_.write_some(buffers, ec);  // asio sends with MSG_NOSIGNAL
      if (ec != boost::asio::error::would_block && ec != boost::asio::error::try_again) return n;
      if (!PollFor(POLLOUT, write_deadline_, write_idle_, ec)) return 0;
    }
  }
  template <typename Buffers>
  size_t write_some(const Buffers& buffers) {
    boost::beast::error_code ec;
    const size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  // Waits for `events`; false (with ec set) on timeout or poll failure.
  bool PollFor(short events, Clock::time_point deadline, std::chrono::milliseconds idle, boost::beast::error_code& ec) {
    const auto now = Clock::now();
    const auto until = std::min(deadline, now + idle);
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - now);
    if (left.count() <= 0) {
      ec = boost::beast::error::timeout;
      return false;
    }
    pollfd fd = {socket_.native_handle(), events, 0};
    const int n = ::poll(&fd, 1, static_cast<int>(left.count()));
    if (n == 0) {
      ec = boost::beast::error::timeout;
      return false;
    }
    if (n < 0 && errno != EINTR) {
      ec = boost::system::error_code(errno, boost::system::system_category());
      return false;
    }
    ec = {};
    return true;
  }

  boost::asio::ip::tcp::socket socket_;
  int shutdown_fd_;
  Clock::time_point read_deadline_ = Clock::time_point::max(), write_deadline_ = Clock::time_point::max();
  std::chrono::milliseconds read_idle_{30000}, write_idle_{30000};
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_DEADLINE_SOCKET_H_
