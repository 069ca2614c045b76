// dist::Group: the processes of one data-parallel training run, joined through LibTorch's c10d.
//
// Launch: as torchrun does, every process is given MASTER_ADDR and MASTER_PORT (where rank 0
//      listens), its RANK and the WORLD_SIZE (OptionsFromEnv); `deepscan train --nproc N` starts N
//      such processes on 127.0.0.1 (docs/distributed.md).
// Join: rank 0 hosts a c10d TCPStore at MASTER_ADDR:MASTER_PORT; each rank registers there with
//      its world size; all ranks wait until every rank 0..W-1 has registered once with the same
//      world size (a second process claiming a rank, or another world size, is refused with
//      kInvalidArgument; a rank that never comes is kUnavailable after `timeout`). Then Gloo
//      (c10d::ProcessGroupGloo, TCP) connects every pair of ranks through the store.
// Collectives: CPU float tensors; each call flattens its tensors into one buffer, so a step's
//      gradients (and its loss) are one all-reduce. Every rank must make the same calls in the same
//      order (the collectives match by order, not by name).
// Failure: a peer that dies (its sockets close) or stops answering fails the collective on every
//      other rank within `timeout`: kUnavailable naming the operation, never a hang. A rank that
//      fails on its own calls Abort(message) first, so that the others waiting in the store stop at
//      once with its message. Threading: one thread at a time per Group.
// Leave: destroying a Group of rank > 0 tells rank 0 it is done with the store; rank 0's
//      destructor waits for all of them (at most min(timeout, 30 s), none once a rank aborted), so
//      the store outlives every rank's last call.
// NCCL: Debian's LibTorch is a CPU build; a CUDA build of LibTorch would use ProcessGroupNCCL on
//      GPU tensors here. This file is the only place that knows the backend.
#ifndef DEEPSCAN_DIST_GROUP_H_
#define DEEPSCAN_DIST_GROUP_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "deepscan/status.h"

namespace deepscan::dist {

struct DistOptions {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Joining, and each collective: a peer silent for this long is given up on.
  std::chrono::milliseconds timeout = std::chrono::minutes(30);
};

// torchrun's variables: RANK, WORLD_SIZE, MASTER_ADDR (default 127.0.0.1), MASTER_PORT (default
// 29500); DEEPSCAN_DIST_TIMEOUT (seconds, default 1800). WORLD_SIZE unset means one process
// (world_size 1, nothing else read). Errors: kInvalidArgument (not a number, RANK outside
// [0, WORLD_SIZE), WORLD_SIZE < 1 or > 1024, a port outside [1, 65535], no RANK with WORLD_SIZE > 1).
Result<DistOptions> OptionsFromEnv();

class Group {
 public:
  // Joins the group (above). Gloo binds to GLOO_SOCKET_IFNAME's interface when set (as in
  // PyTorch), else to 127.0.0.1 when MASTER_ADDR is a loopback address, else to this host's
  // resolved name. Errors: kInvalidArgument (options, a duplicate rank, world sizes that differ),
  // kUnavailable (MASTER_PORT taken on rank 0, the master unreachable, a rank missing, Gloo).
  // Ignores SIGPIPE for the process: a write to a killed peer is then an error, not a death.
  static Result<std::unique_ptr<Group>> Connect(const DistOptions& options);
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_root() const { return rank_ == 0; }

  // In place: each tensor becomes the mean over the ranks (sum / world size). Float32 only.
  // `what` names the operation in errors ("gradients of step 12").
  Status AllReduceMean(const std::vector<torch::Tensor>& tensors, const std::string& what);
  // In place: each tensor takes root's values. Float32 and int64 (one collective per dtype).
  Status Broadcast(const std::vector<torch::Tensor>& tensors, int root, const std::string& what);
  // Every rank's `value`, indexed by rank (through the store; for small strings: digests, checks).
  // Rank 0 returns only once every rank has read them all, so it may fail on what it gathered and
  // leave at once without another rank losing the values mid-read.
  Result<std::vector<std::string>> AllGather(const std::string& value, const std::string& what);
  // Root's `*bytes` on every rank (through the store; a checkpoint fits).
  Status ShareBytes(std::string* bytes, int root, const std::string& what);
  // Tells the other ranks this one is stopping (best effort; they see `why` in their error).
  void Abort(const std::string& why);

 private:
  struct Impl;
  Group(int rank, int world_size, std::unique_ptr<Impl> impl);
  int rank_ = 0, world_size_ = 1;
  std::unique_ptr<Impl> impl_;
};

// A digest of every parameter and buffer (names, shapes and bytes; XXH3-64, hex): equal on two
// ranks only if their models are bit-identical.
std::string ModuleDigest(const std::vector<std::pair<std::string, torch::Tensor>>& named_tensors);

}  // namespace deepscan::dist

#endif  // DEEPSCAN_DIST_GROUP_H_
