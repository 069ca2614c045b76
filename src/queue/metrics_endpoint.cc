#include "queue/metrics_endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace deepscan::queue {
namespace {

void SendAll(int fd, const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, 2000) <= 0) return;
    ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

std::string Response(int code, const char* reason, const std::string& type, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(code) + " " + reason + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const std::string& host, int port,
                                                                std::function<std::string()> render,
                                                                std::string content_type) {
  if (port < 0 || port > 65535) return Status::InvalidArgument("metrics port must be in 0..65535");
  sockaddr_storage addr{};
  socklen_t len = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
  } else {
    return Status::InvalidArgument("metrics host must be an IP address: " + host);
  }
  auto ep = std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint());
  ep->render_ = std::move(render);
  ep->content_type_ = std::move(content_type);
  const std::string where = host + ":" + std::to_string(port);
  ep->listen_fd_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (ep->listen_fd_ < 0) return Status::IoError("cannot listen on " + where + ": " + std::strerror(errno));
  int one = 1;
  ::setsockopt(ep->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(ep->listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(ep->listen_fd_, 16) != 0) {
    Status s = Status::IoError("cannot listen on " + where + ": " + std::strerror(errno));
    ::close(ep->listen_fd_);
    ep->listen_fd_ = -1;
    return s;
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(ep->listen_fd_, reinterpret_cast<sockaddr*>(&bound), &blen);
  ep->port_ = family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                                : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  MetricsEndpoint* raw = ep.get();
  ep->thread_ = std::thread([raw] { raw->Serve(); });
  return ep;
}

MetricsEndpoint::~MetricsEndpoint() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

void MetricsEndpoint::Serve() {
  while (!stop_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 200);
    if (r <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    Answer(fd);
    ::close(fd);
  }
}

void MetricsEndpoint::Answer(int fd) {
  std::string head;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (head.find("\r\n\r\n") == std::string::npos && head.size() < 8192) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, left) <= 0) return;
    char buf[2048];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    head.append(buf, static_cast<size_t>(n));
  }
  if (head.find("\r\n\r\n") == std::string::npos) {
    SendAll(fd, Response(431, "Request Header Fields Too Large", "text/plain", "request head too large\n"));
    return;
  }
  const std::string line = head.substr(0, head.find("\r\n"));
  auto path_is = [&](const char* path) {
    const std::string get = std::string("GET ") + path;
    return line.compare(0, get.size(), get) == 0 &&
           (line.size() == get.size() || line[get.size()] == ' ' || line[get.size()] == '?');
  };
  if (path_is("/metrics")) {
    SendAll(fd, Response(200, "OK", content_type_, render_()));
  } else if (path_is("/healthz")) {
    SendAll(fd, Response(200, "OK", "text/plain", "ok\n"));
  } else {
    SendAll(fd, Response(404, "Not Found", "text/plain", "not found (GET /metrics)\n"));
  }
}

}  // namespace deepscan::queue
