#include "dist/group.h"

#include <signal.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdlib>
#include <iomanip>
#include <sstream>
#include <thread>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace deepscan::dist {
namespace {

using Clock = std::chrono::steady_clock;

Result<int64_t> EnvInt(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long long x = std::strtoll(v, &end, 10);
  if (*end != '\0') return Status::InvalidArgument(std::string(name) + "='" + v + "' is not a whole number");
  if (x < lo || x > hi) {
    return Status::InvalidArgument(std::string(name) + "=" + v + " is outside [" + std::to_string(lo) + ", " +
                                   std::to_string(hi) + "]");
  }
  return static_cast<int64_t>(x);
}

std::vector<uint8_t> Bytes(const std::string& s) { return {s.begin(), s.end()}; }
std::string Text(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

// A store call failed: rank 0, which hosts the store, is gone.
Status StoreGone(const std::string& what, const std::exception& e) {
  return Status::Unavailable(what + ": the rendezvous store went away (rank 0 stopped?): " + e.what());
}

bool IsLoopback(const std::string& addr) { return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1"; }

}  // namespace

Result<DistOptions> OptionsFromEnv() {
  DistOptions o;
  const char* world = std::getenv("WORLD_SIZE");
  if (!world || !*world) return o;
  ASSIGN_OR_RETURN(int64_t w, EnvInt("WORLD_SIZE", 1, 1, 1024));
  o.world_size = static_cast<int>(w);
  if (o.world_size == 1) return o;
  if (!std::getenv("RANK")) return Status::InvalidArgument("WORLD_SIZE=" + std::string(world) + " needs RANK");
  ASSIGN_OR_RETURN(int64_t r, EnvInt("RANK", 0, 0, 1 << 20));
  if (r >= o.world_size) {
    return Status::InvalidArgument("RANK=" + std::to_string(r) +
                                   " is outside [0, WORLD_SIZE=" + std::to_string(o.world_size) + ")");
  }
  o.rank = static_cast<int>(r);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) o.master_addr = a;
  ASSIGN_OR_RETURN(int64_t port, EnvInt("MASTER_PORT", 29500, 1, 65535));
  o.master_port = static_cast<int>(port);
  ASSIGN_OR_RETURN(int64_t t, EnvInt("DEEPSCAN_DIST_TIMEOUT", 1800, 1, 7 * 24 * 3600));
  o.timeout = std::chrono::seconds(t);
  return o;
}

struct Group::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout{0};
  int64_t sequence = 0;  // of the store-based calls (AllGather, ShareBytes): every rank counts the same

  // What a rank that stopped posted (Abort), as "; rank 1 stopped: ...", or "" (none, or no store).
  std::string AbortMessage() {
    try {
      if (store->check({"abort"})) return "; " + Text(store->get("abort"));
    } catch (const std::exception&) {
      // the store went with rank 0
    }
    return "";
  }

  // A collective failed on `rank`: a peer died or timed out (with its message when it posted one).
  Status PeerFailed(int rank, const std::string& what, const std::exception& e) {
    return Status::Unavailable("rank " + std::to_string(rank) + ": " + what +
                               " failed: a peer stopped or stopped answering: " + e.what() + AbortMessage());
  }

  // Waits until every key exists, or another rank aborted, or the timeout.
  Status WaitKeys(const std::vector<std::string>& keys, const std::string& what) {
    const auto deadline = Clock::now() + timeout;
    try {
      while (!store->check(keys)) {
        // An abort may land between the two checks, after the keys that it follows (a rank sets its
        // keys, then fails on what it read and aborts): the keys are there, so this wait succeeded
        // and the abort is the caller's to meet next.
        if (store->check({"abort"})) {
          if (store->check(keys)) break;
          return Status::Unavailable(what + ": " + Text(store->get("abort")));
        }
        if (Clock::now() > deadline) {
          return Status::Unavailable(what + ": no answer from every rank within " +
                                     std::to_string(timeout.count() / 1000) + " s");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    } catch (const std::exception& e) {
      return StoreGone(what, e);
    }
    return Status::Ok();
  }
};

Group::Group(int rank, int world_size, std::unique_ptr<Impl> impl)
    : rank_(rank), world_size_(world_size), impl_(std::move(impl)) {}
// Leaving: rank 0 hosts the store, so it stays until every other rank has said it is done with
// the store (or one aborted, or a bounded wait ran out): a rank still reading the last gathered
// value would otherwise see the store vanish under it.
Group::~Group() {
  if (!impl_ || !impl_->store || world_size_ == 1) return;
  try {
    if (rank_ != 0) {
      impl_->store->add("left", 1);
      return;
    }
    const auto deadline = Clock::now() + std::min<std::chrono::milliseconds>(impl_->timeout, std::chrono::seconds(30));
    while (impl_->store->add("left", 0) < world_size_ - 1 && !impl_->store->check({"abort"}) &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  } catch (const std::exception&) {
    // the store went away (rank 0 stopped first): nothing left to wait for
  }
}

Result<std::unique_ptr<Group>> Group::Connect(const DistOptions& o) {
  if (o.world_size < 1 || o.rank < 0 || o.rank >= o.world_size) {
    return Status::InvalidArgument("rank " + std::to_string(o.rank) + " is outside [0, world size " +
                                   std::to_string(o.world_size) + ")");
  }
  // Gloo and the TCP store write to sockets without MSG_NOSIGNAL: a write to a peer that was killed would raise
  // SIGPIPE and end this rank with 141 instead of the error (and exit code 23) that names the peer.
  ::signal(SIGPIPE, SIG_IGN);
  auto impl = std::make_unique<Impl>();
  impl->timeout = o.timeout;
  const std::string where = o.master_addr + ":" + std::to_string(o.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<uint16_t>(o.master_port);
    so.isServer = o.rank == 0;
    so.waitWorkers = false;
    so.timeout = o.timeout;
    impl->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    return Status::Unavailable(o.rank == 0 ? "rank 0 cannot listen on " + where + ": " + e.what()
                                           : "rank " + std::to_string(o.rank) + " cannot reach rank 0 at " + where +
                                                 ": " + e.what());
  }
  Impl& s = *impl;
  // Register: one process per rank, one world size for all.
  const std::string me = "rank/" + std::to_string(o.rank);
  try {
    if (s.store->add(me + "/claims", 1) > 1) {
      const std::string why = "two processes claim rank " + std::to_string(o.rank) + " (check RANK)";
      s.store->set("abort", Bytes(why));
      return Status::InvalidArgument(why);
    }
    s.store->set(me, Bytes(std::to_string(o.world_size)));
  } catch (const std::exception& e) {
    return Status::Unavailable("cannot register with rank 0 at " + where + ": " + e.what());
  }
  std::vector<std::string> keys;
  for (int r = 0; r < o.world_size; ++r) keys.push_back("rank/" + std::to_string(r));
  RETURN_IF_ERROR(s.WaitKeys(keys, "waiting for the " + std::to_string(o.world_size) + " ranks to join at " + where));
  try {
    for (int r = 0; r < o.world_size; ++r) {
      const std::string w = Text(s.store->get(keys[r]));
      if (w != std::to_string(o.world_size)) {
        const std::string why = "rank " + std::to_string(r) + " has WORLD_SIZE=" + w + ", rank " +
                                std::to_string(o.rank) + " has " + std::to_string(o.world_size);
        s.store->set("abort", Bytes(why));
        return Status::InvalidArgument(why);
      }
    }
    auto gloo_options = c10d::ProcessGroupGloo::Options::create(o.timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname) {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (IsLoopback(o.master_addr)) {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    gloo_options->threads = 2;
    s.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", s.store), o.rank,
                                                       o.world_size, gloo_options);
  } catch (const std::exception& e) {
    return Status::Unavailable("rank " + std::to_string(o.rank) + ": connecting the ranks (Gloo) failed: " + e.what());
  }
  return std::unique_ptr<Group>(new Group(o.rank, o.world_size, std::move(impl)));
}

namespace {

// One contiguous buffer of `tensors` (all of `dtype`), and its way back.
torch::Tensor Flatten(const std::vector<torch::Tensor>& tensors) {
  std::vector<torch::Tensor> flat;
  flat.reserve(tensors.size());
  for (const auto& t : tensors) flat.push_back(t.detach().reshape(-1));
  return torch::cat(flat);
}

void Unflatten(const torch::Tensor& flat, const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard no_grad;
  int64_t at = 0;
  for (const auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(flat.slice(0, at, at + n).view(t.sizes()));
    at += n;
  }
}

}  // namespace

Status Group::AllReduceMean(const std::vector<torch::Tensor>& tensors, const std::string& what) {
  if (tensors.empty()) return Status::Ok();
  for (const auto& t : tensors) {
    if (t.scalar_type() != torch::kFloat32) return Status::Internal(what + ": all-reduce of a non-float32 tensor");
  }
  try {
    std::vector<torch::Tensor> buf{Flatten(tensors)};
    impl_->pg->allreduce(buf)->wait(impl_->timeout);
    buf[0].div_(world_size_);
    Unflatten(buf[0], tensors);
  } catch (const std::exception& e) {
    return impl_->PeerFailed(rank_, what, e);
  }
  return Status::Ok();
}

Status Group::Broadcast(const std::vector<torch::Tensor>& tensors, int root, const std::string& what) {
  for (const auto& t : tensors) {
    if (t.scalar_type() != torch::kFloat32 && t.scalar_type() != torch::kInt64) {
      return Status::Internal(what + ": broadcast of a tensor neither float32 nor int64");
    }
  }
  for (torch::ScalarType dtype : {torch::kFloat32, torch::kInt64}) {
    std::vector<torch::Tensor> of_type;
    for (const auto& t : tensors) {
      if (t.scalar_type() == dtype) of_type.push_back(t);
    }
    if (of_type.empty()) continue;
    try {
      std::vector<torch::Tensor> buf{Flatten(of_type)};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      impl_->pg->broadcast(buf, opts)->wait(impl_->timeout);
      Unflatten(buf[0], of_type);
    } catch (const std::exception& e) {
      return impl_->PeerFailed(rank_, what, e);
    }
  }
  return Status::Ok();
}

Result<std::vector<std::string>> Group::AllGather(const std::string& value, const std::string& what) {
  const std::string prefix = "gather/" + std::to_string(impl_->sequence++) + "/";
  std::vector<std::string> keys;
  for (int r = 0; r < world_size_; ++r) keys.push_back(prefix + std::to_string(r));
  try {
    impl_->store->set(keys[rank_], Bytes(value));
  } catch (const std::exception& e) {
    return StoreGone(what, e);
  }
  RETURN_IF_ERROR(impl_->WaitKeys(keys, what));
  std::vector<std::string> out;
  std::vector<std::string> read;  // "rank r has read every value": rank 0, the store's host, waits for them
  for (int r = 1; r < world_size_; ++r) read.push_back(prefix + "read/" + std::to_string(r));
  try {
    for (const auto& k : keys) out.push_back(Text(impl_->store->get(k)));
    if (rank_ != 0) impl_->store->set(read[rank_ - 1], Bytes("1"));
  } catch (const std::exception& e) {
    return StoreGone(what, e);
  }
  // So that rank 0 may fail (and take the store with it) on what it gathered, e.g. configs that
  // differ, without the others losing the values mid-read: each of them then fails on its own.
  if (rank_ == 0) RETURN_IF_ERROR(impl_->WaitKeys(read, what));
  return out;
}

Status Group::ShareBytes(std::string* bytes, int root, const std::string& what) {
  const std::string key = "share/" + std::to_string(impl_->sequence++);
  try {
    if (rank_ == root) {
      impl_->store->set(key, Bytes(*bytes));
      return Status::Ok();
    }
  } catch (const std::exception& e) {
    return StoreGone(what, e);
  }
  RETURN_IF_ERROR(impl_->WaitKeys({key}, what));
  try {
    *bytes = Text(impl_->store->get(key));
  } catch (const std::exception& e) {
    return StoreGone(what, e);
  }
  return Status::Ok();
}

void Group::Abort(const std::string& why) {
  try {
    impl_->store->set("abort", Bytes("rank " + std::to_string(rank_) + " stopped: " + why));
  } catch (const std::exception&) {
    // best effort: the store may be gone with rank 0
  }
}

std::string ModuleDigest(const std::vector<std::pair<std::string, torch::Tensor>>& named_tensors) {
  XXH3_state_t* state = XXH3_createState();
  XXH3_64bits_reset(state);
  for (const auto& [name, tensor] : named_tensors) {
    XXH3_64bits_update(state, name.data(), name.size());
    const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    for (int64_t d : t.sizes()) XXH3_64bits_update(state, &d, sizeof d);
    XXH3_64bits_update(state, t.data_ptr(), t.numel() * t.element_size());
  }
  const XXH64_hash_t h = XXH3_64bits_digest(state);
  XXH3_freeState(state);
  std::ostringstream out;
  out << std::hex << std::setw(16) << std::setfill('0') << h;
  return out.str();
}

}  // namespace deepscan::dist
