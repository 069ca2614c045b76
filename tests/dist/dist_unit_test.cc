// src/dist (group.h) and the sharded batches of data-parallel training (train/pair_batches.h):
// torchrun's variables parsed and refused; two ranks in one process (threads) averaging and
// broadcasting over Gloo on 127.0.0.1; the weights digest; and W shards of a step that together
// are exactly the one-process batch.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "dist/group.h"
#include "dist/launch.h"
#include "synthetic_face.h"
#include "train/crop_store.h"
#include "train/pair_batches.h"

namespace deepscan {
namespace {

struct EnvGuard {  // sets variables for one test, restores none (each test sets what it reads)
  explicit EnvGuard(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const char* k : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "DEEPSCAN_DIST_TIMEOUT"}) unsetenv(k);
    for (auto [k, v] : vars) setenv(k, v, 1);
  }
  ~EnvGuard() {
    for (const char* k : {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "DEEPSCAN_DIST_TIMEOUT"}) unsetenv(k);
  }
};

TEST(DistOptionsTest, ReadsTorchrunVariables) {
  {
    EnvGuard env({});
    auto o = dist::OptionsFromEnv();
    ASSERT_TRUE(o.ok());
    EXPECT_EQ(o->world_size, 1);
  }
  {
    EnvGuard env({{"RANK", "1"},
                  {"WORLD_SIZE", "4"},
                  {"MASTER_ADDR", "10.0.0.5"},
                  {"MASTER_PORT", "29600"},
                  {"DEEPSCAN_DIST_TIMEOUT", "7"}});
    auto o = dist::OptionsFromEnv();
    ASSERT_TRUE(o.ok()) << o.status().ToString();
    EXPECT_EQ(o->rank, 1);
    EXPECT_EQ(o->world_size, 4);
    EXPECT_EQ(o->master_addr, "10.0.0.5");
    EXPECT_EQ(o->master_port, 29600);
    EXPECT_EQ(o->timeout, std::chrono::seconds(7));
  }
}

TEST(DistOptionsTest, RefusesBadVariables) {
  const std::vector<std::pair<std::vector<std::pair<const char*, const char*>>, std::string>> cases = {
      {{{"WORLD_SIZE", "2"}}, "WORLD_SIZE=2 needs RANK"},
      {{{"WORLD_SIZE", "2"}, {"RANK", "2"}}, "RANK=2 is outside [0, WORLD_SIZE=2)"},
      {{{"WORLD_SIZE", "two"}, {"RANK", "0"}}, "WORLD_SIZE='two' is not a whole number"},
      {{{"WORLD_SIZE", "0"}}, "WORLD_SIZE=0 is outside [1, 1024]"},
      {{{"WORLD_SIZE", "2"}, {"RANK", "-1"}}, "RANK=-1 is outside"},
      {{{"WORLD_SIZE", "2"}, {"RANK", "0"}, {"MASTER_PORT", "70000"}}, "MASTER_PORT=70000 is outside [1, 65535]"},
  };
  for (const auto& [vars, message] : cases) {
    EnvGuard env({});
    for (auto [k, v] : vars) setenv(k, v, 1);
    auto o = dist::OptionsFromEnv();
    ASSERT_FALSE(o.ok()) << message;
    EXPECT_EQ(o.status().code(), Code::kInvalidArgument);
    EXPECT_NE(o.status().message().find(message), std::string::npos) << o.status().message();
  }
}

TEST(GroupTest, TwoRanksAverageBroadcastAndGather) {
  const Result<int> free_port = dist::FreePort();
  ASSERT_TRUE(free_port.ok()) << free_port.status().ToString();
  const int port = *free_port;
  std::vector<torch::Tensor> results(2), broadcast(2);
  std::vector<std::vector<std::string>> gathered(2);
  std::vector<Status> statuses(2);
  auto rank = [&](int r) {
    dist::DistOptions o;
    o.rank = r;
    o.world_size = 2;
    o.master_port = port;
    o.timeout = std::chrono::seconds(20);
    auto g = dist::Group::Connect(o);
    if (!g.ok()) {
      statuses[r] = g.status();
      return;
    }
    torch::Tensor a = torch::tensor({1.0f + 2 * r, 2.0f + 2 * r}), b = torch::full({2, 2}, 10.0f * r);
    statuses[r] = (*g)->AllReduceMean({a, b}, "a test all-reduce");
    results[r] = torch::cat({a, b.reshape(-1)});
    torch::Tensor w = torch::full({3}, static_cast<float>(r + 5));
    torch::Tensor n = torch::full({1}, static_cast<int64_t>(r + 100), torch::kInt64);
    if (statuses[r].ok()) statuses[r] = (*g)->Broadcast({w, n}, 1, "a test broadcast");
    broadcast[r] = torch::cat({w, n.to(torch::kFloat32)});
    // rank 1 is then polling the store when rank 0 posts, reads and leaves
    if (r == 0) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto all = (*g)->AllGather("value of " + std::to_string(r), "a test gather");
    if (all.ok()) {
      gathered[r] = *all;
    } else if (statuses[r].ok()) {
      statuses[r] = all.status();
    }
    // rank 0 (the store's host) leaving at once must not cut off rank 1's last read
    if (r == 0) g->reset();
  };
  std::thread t0(rank, 0), t1(rank, 1);
  t0.join();
  t1.join();
  for (int r = 0; r < 2; ++r) {
    ASSERT_TRUE(statuses[r].ok()) << statuses[r].ToString();
    // mean of [1, 2] and [3, 4] is [2, 3]; of 0 and 10 is 5
    EXPECT_TRUE(torch::equal(results[r], torch::tensor({2.0f, 3.0f, 5.0f, 5.0f, 5.0f, 5.0f}))) << results[r];
    EXPECT_TRUE(torch::equal(broadcast[r], torch::tensor({6.0f, 6.0f, 6.0f, 101.0f}))) << broadcast[r];
    EXPECT_EQ(gathered[r], (std::vector<std::string>{"value of 0", "value of 1"}));
  }
}

TEST(GroupTest, MissingRankIsUnavailableAfterTheTimeout) {
  dist::DistOptions o;
  o.rank = 0;
  o.world_size = 2;
  const Result<int> free_port = dist::FreePort();
  ASSERT_TRUE(free_port.ok()) << free_port.status().ToString();
  o.master_port = *free_port;
  o.timeout = std::chrono::seconds(1);
  auto t0 = std::chrono::steady_clock::now();
  auto g = dist::Group::Connect(o);
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kUnavailable);
  EXPECT_NE(g.status().message().find("waiting for the 2 ranks to join"), std::string::npos) << g.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10));
}

TEST(ModuleDigestTest, ChangesWithOneBitAndNames) {
  torch::Tensor a = torch::arange(10, torch::kFloat32), b = a.clone();
  const std::string d = dist::ModuleDigest({{"w", a}});
  EXPECT_EQ(d.size(), 16u);
  EXPECT_EQ(d, dist::ModuleDigest({{"w", b}}));
  b[3] = std::nextafter(3.0f, 4.0f);
  EXPECT_NE(d, dist::ModuleDigest({{"w", b}}));
  EXPECT_NE(d, dist::ModuleDigest({{"v", a}}));
  EXPECT_NE(d, dist::ModuleDigest({{"w", a.reshape({2, 5})}}));
}

TEST(ShardTest, ShardsOfAStepAreTheOneProcessBatch) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("shard_test_" + std::to_string(getpid()) + ".h5")).string();
  {
    auto w = train::CropStoreWriter::Create(path, testing::kSyntheticSide, 0.3f);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (int i = 0; i < 8; ++i) {
      train::CropRecord r;
      r.keypoints = testing::FaceKeypoints();
      r.source = "s" + std::to_string(i);
      r.group = "g" + std::to_string(i);
      ASSERT_TRUE((*w)->Append(testing::SyntheticFace(r.keypoints, testing::kSyntheticSide, i), r).ok());
    }
    ASSERT_TRUE((*w)->Close().ok());
  }
  auto reader = train::CropStoreReader::Open(path, 16);
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  train::BatchOptions o;
  o.input_size = 64;
  o.mask_size = 4;
  o.cross_blend_p = 0.5f;  // donors from the whole step, not the shard
  const std::vector<int64_t> rows = {3, 1, 4, 0, 5, 2, 7, 6};
  auto whole = train::MakePairBatchShard(**reader, rows, 0, rows.size(), o, 12345);
  ASSERT_TRUE(whole.ok()) << whole.status().ToString();
  for (int world : {2, 4}) {
    std::vector<torch::Tensor> images, masks;
    std::vector<int64_t> shard_rows;
    for (int r = 0; r < world; ++r) {
      auto s =
          train::MakePairBatchShard(**reader, rows, rows.size() * r / world, rows.size() * (r + 1) / world, o, 12345);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      images.push_back(s->images);
      masks.push_back(s->masks);
      shard_rows.insert(shard_rows.end(), s->rows.begin(), s->rows.end());
    }
    EXPECT_TRUE(torch::equal(torch::cat(images), whole->images)) << "world " << world;
    EXPECT_TRUE(torch::equal(torch::cat(masks), whole->masks)) << "world " << world;
    EXPECT_EQ(shard_rows, whole->rows);
  }
  // another step's seed: another batch
  auto other = train::MakePairBatchShard(**reader, rows, 0, rows.size(), o, 12346);
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(torch::equal(other->images, whole->images));
  EXPECT_FALSE(train::MakePairBatchShard(**reader, rows, 5, 9, o, 1).ok());  // beyond the step
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace deepscan
