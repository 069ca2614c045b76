// serve::JobStore: the job store `deepscan serve --job-dir` replicas share. Several JobStore
// objects on one folder stand for several replicas (they share nothing but the files).
#include "serve/job_store.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "serve/scan_jobs.h"
#include "test_env.h"

namespace deepscan::serve {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

// An upload of `text` in the replica's upload folder, as the server writes it.
std::string Upload(const JobStore& store, const std::string& text = "video bytes") {
  static std::atomic<int> n{0};
  const std::string path = store.upload_dir() + "/upload-" + std::to_string(++n);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

std::unique_ptr<JobStore> OpenStore(const std::string& dir, double lease_s) {
  auto s = JobStore::Open(dir, lease_s);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(*s) : nullptr;
}

TEST(JobStoreTest, StateRoundTrips) {
  const std::string dir = testing::TempDir() + "/store";
  auto a = OpenStore(dir, 10);
  auto b = OpenStore(dir, 10);
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->replica(), b->replica());
  EXPECT_NE(a->upload_dir(), b->upload_dir());

  const std::string id = NewJobId();
  const std::string upload = Upload(*a, "0123456789");
  Result<JobClaim> c = a->Create(id, upload, "clip \xc3\xa9.mp4", 10);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->attempt, 1);
  EXPECT_FALSE(fs::exists(upload));  // moved in
  EXPECT_EQ(fs::file_size(a->VideoPath(id)), 10u);

  // Another replica reads it.
  Result<JobRecord> r = b->Read(id);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->job.id, id);
  EXPECT_EQ(r->job.state, JobState::kQueued);
  EXPECT_EQ(r->job.name, "clip \xc3\xa9.mp4");
  EXPECT_EQ(r->job.bytes, 10);
  EXPECT_EQ(r->owner, a->replica());
  EXPECT_EQ(r->attempt, 1);
  EXPECT_GT(r->created_s, 1.6e9);

  JobRecord running = *r;
  running.job.state = JobState::kRunning;
  running.job.progress = 0.25;
  ASSERT_TRUE(a->Update(*c, running));
  r = b->Read(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->job.state, JobState::kRunning);
  EXPECT_DOUBLE_EQ(r->job.progress, 0.25);

  JobRecord done = running;
  done.job.state = JobState::kDone;
  done.job.progress = 1;
  done.job.report = std::make_shared<const nlohmann::json>(nlohmann::json{{"videos", {{{"path", "clip"}}}}});
  ASSERT_TRUE(a->Finish(*c, done));
  r = b->Read(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->job.state, JobState::kDone);
  ASSERT_TRUE(r->job.report);
  EXPECT_EQ(*r->job.report, *done.job.report);
  EXPECT_FALSE(fs::exists(a->VideoPath(id)));  // the upload goes once the job ended
  EXPECT_FALSE(a->Update(*c, running));        // a finished job is not written again

  // A failure keeps its code and message.
  const std::string id2 = NewJobId();
  Result<JobClaim> c2 = b->Create(id2, Upload(*b), "x", 1);
  ASSERT_TRUE(c2.ok());
  JobRecord failed;
  failed.job.state = JobState::kFailed;
  failed.job.error = Status::NotAVideo("x holds no video stream");
  ASSERT_TRUE(b->Finish(*c2, failed));
  r = a->Read(id2);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->job.state, JobState::kFailed);
  EXPECT_EQ(r->job.error.code(), Code::kNotAVideo);
  EXPECT_EQ(r->job.error.message(), "x holds no video stream");
  EXPECT_EQ(r->owner, b->replica());

  EXPECT_EQ(a->Read(NewJobId()).status().code(), Code::kNotFound);
}

TEST(JobStoreTest, IdsThatAreNotJobIdsNeverReachTheFilesystem) {
  const std::string dir = testing::TempDir() + "/store";
  auto a = OpenStore(dir, 10);
  ASSERT_TRUE(a);
  // A file an id with ".." or "/" would reach if it were used as a path.
  std::ofstream(dir + "/jobs/state.json") << R"({"id":"","state":"done","report":{}})";
  for (const std::string bad :
       {"", "..", "../jobs", "a/b", "0123456789abcdef0123456789abcde/", "../0123456789abcdef0123456789ab",
        "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcdef0", "/etc/passwd"}) {
    EXPECT_EQ(a->Read(bad).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_FALSE(a->Reclaim(bad)) << bad;
    EXPECT_FALSE(a->Renew(JobClaim{bad, 1})) << bad;
    EXPECT_FALSE(a->Update(JobClaim{bad, 1}, JobRecord{})) << bad;
    const std::string upload = Upload(*a);
    EXPECT_EQ(a->Create(bad, upload, "x", 1).status().code(), Code::kInvalidArgument) << bad;
    EXPECT_FALSE(fs::exists(upload)) << "the refused upload is deleted";
  }
  EXPECT_TRUE(fs::is_empty(dir + "/active"));
}

TEST(JobStoreTest, AFreshLeaseIsNotReclaimedAnExpiredOneIs) {
  const std::string dir = testing::TempDir() + "/store";
  const double lease = 0.3;
  auto a = OpenStore(dir, lease);
  auto b = OpenStore(dir, lease);
  ASSERT_TRUE(a && b);
  const std::string id = NewJobId();
  Result<JobClaim> c = a->Create(id, Upload(*a), "clip", 11);
  ASSERT_TRUE(c.ok());

  // A renews for three leases: B never gets it.
  const auto until = std::chrono::steady_clock::now() + milliseconds(900);
  while (std::chrono::steady_clock::now() < until) {
    ASSERT_TRUE(a->Renew(*c));
    EXPECT_TRUE(b->Orphans().empty());
    EXPECT_FALSE(b->Reclaim(id));
    std::this_thread::sleep_for(milliseconds(30));
  }
  // A goes silent ("killed"): after the lease B takes the job over, from the start.
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_EQ(b->Orphans(), std::vector<std::string>{id});
  auto taken = b->Reclaim(id);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->first.attempt, 2);
  EXPECT_EQ(taken->second.job.name, "clip");
  EXPECT_EQ(taken->second.job.bytes, 11);
  Result<JobRecord> r = a->Read(id);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->owner, b->replica());
  EXPECT_EQ(r->attempt, 2);
  EXPECT_EQ(r->job.state, JobState::kQueued);
  EXPECT_TRUE(b->Orphans().empty());  // B's claim is fresh

  // A comes back: it lost the job and may write nothing for it; the video stays for B.
  EXPECT_FALSE(a->Renew(*c));
  JobRecord done = r.value();
  done.job.state = JobState::kDone;
  done.job.report = std::make_shared<const nlohmann::json>(nlohmann::json::object());
  EXPECT_FALSE(a->Finish(*c, done));
  EXPECT_TRUE(fs::exists(b->VideoPath(id)));
  EXPECT_EQ(b->Read(id)->job.state, JobState::kQueued);
  // B finishes it; a finished job is no orphan, however old its lease.
  ASSERT_TRUE(b->Finish(taken->first, done));
  std::this_thread::sleep_for(milliseconds(400));
  EXPECT_TRUE(a->Orphans().empty());
  EXPECT_FALSE(a->Reclaim(id));
}

TEST(JobStoreTest, AClaimIsExclusiveAcrossReplicas) {
  const std::string dir = testing::TempDir() + "/store";
  const double lease = 0.2;
  auto dead = OpenStore(dir, lease);
  ASSERT_TRUE(dead);
  std::vector<std::string> ids;
  for (int i = 0; i < 40; ++i) {
    ids.push_back(NewJobId());
    ASSERT_TRUE(dead->Create(ids.back(), Upload(*dead), "clip", 1).ok());
  }
  std::this_thread::sleep_for(milliseconds(300));

  // Three replicas race for every orphan at once; each job goes to exactly one of them.
  constexpr int kReplicas = 3;
  std::vector<std::unique_ptr<JobStore>> replicas;
  for (int i = 0; i < kReplicas; ++i) replicas.push_back(OpenStore(dir, lease));
  std::vector<std::vector<std::string>> won(kReplicas);
  std::vector<std::thread> threads;
  for (int i = 0; i < kReplicas; ++i) {
    threads.emplace_back([&, i] {
      for (const std::string& id : replicas[i]->Orphans()) {
        if (auto t = replicas[i]->Reclaim(id)) won[i].push_back(t->first.id);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::multiset<std::string> all;
  for (const auto& w : won) all.insert(w.begin(), w.end());
  EXPECT_EQ(all.size(), ids.size());
  for (const std::string& id : ids) {
    EXPECT_EQ(all.count(id), 1u) << id;
    Result<JobRecord> r = dead->Read(id);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->attempt, 2);
  }
  for (const std::string& id : ids) EXPECT_FALSE(dead->Renew(JobClaim{id, 1}));
}

TEST(JobStoreTest, ReleaseHandsAJobOverAtOnce) {
  const std::string dir = testing::TempDir() + "/store";
  auto a = OpenStore(dir, 60);
  auto b = OpenStore(dir, 60);
  ASSERT_TRUE(a && b);
  const std::string id = NewJobId();
  Result<JobClaim> c = a->Create(id, Upload(*a), "clip", 1);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(b->Reclaim(id));
  a->Release(*c);
  auto taken = b->Reclaim(id);
  ASSERT_TRUE(taken);
  EXPECT_EQ(taken->first.attempt, 2);
}

TEST(JobStoreTest, CollectDeletesExpiredFinishedJobsOnly) {
  const std::string dir = testing::TempDir() + "/store";
  auto a = OpenStore(dir, 10);
  auto b = OpenStore(dir, 10);
  ASSERT_TRUE(a && b);
  auto make = [&](bool finish) {
    const std::string id = NewJobId();
    Result<JobClaim> c = a->Create(id, Upload(*a), "clip", 1);
    EXPECT_TRUE(c.ok());
    if (finish) {
      JobRecord r;
      r.job.state = JobState::kFailed;
      r.job.error = Status::CorruptInput("bad");
      EXPECT_TRUE(a->Finish(*c, r));
    }
    return id;
  };
  const std::string open_job = make(false);
  std::vector<std::string> finished;
  for (int i = 0; i < 3; ++i) {
    finished.push_back(make(true));
    std::this_thread::sleep_for(milliseconds(20));  // distinct finishing times
  }
  // Keep the newest two finished jobs; any replica may collect.
  EXPECT_EQ(b->Collect(3600, 2), 1u);
  EXPECT_EQ(b->Read(finished[0]).status().code(), Code::kNotFound);
  EXPECT_TRUE(b->Read(finished[1]).ok());
  EXPECT_TRUE(b->Read(finished[2]).ok());
  // Past their time: gone; the unfinished job stays however old.
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(b->Collect(0.1, 1000), 2u);
  EXPECT_EQ(b->Read(finished[2]).status().code(), Code::kNotFound);
  Result<JobRecord> r = b->Read(open_job);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->job.state, JobState::kQueued);
  // Live replicas' upload folders stay.
  EXPECT_TRUE(fs::is_directory(a->upload_dir()));
  EXPECT_TRUE(fs::is_directory(b->upload_dir()));
}

}  // namespace
}  // namespace deepscan::serve
