#include "serve/job_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "serve/request_parse.h"

namespace deepscan::serve {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kStateFile = "state.json";
constexpr const char* kVideoFile = "video";

double NowS() { return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(); }

timespec ToTimespec(double s) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(s);
  t.tv_nsec = static_cast<long>((s - static_cast<double>(t.tv_sec)) * 1e9);
  return t;
}

double SecondsOf(const struct stat& st) {
  return static_cast<double>(st.st_mtim.tv_sec) + static_cast<double>(st.st_mtim.tv_nsec) * 1e-9;
}

// The file's mtime in Unix seconds; nullopt when it cannot be read (gone).
std::optional<double> MtimeS(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return SecondsOf(st);
}

// A lease: the claim file's mtime, read through open(2) so that an NFS client revalidates the
// attributes with the server (close-to-open) instead of answering from its attribute cache.
std::optional<double> LeaseS(const std::string& claim) {
  const int fd = ::open(claim.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  const bool ok = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (!ok) return std::nullopt;
  return SecondsOf(st);
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// Sets both times of `path` to `s`.
bool SetTimes(const std::string& path, double s) {
  const timespec t = ToTimespec(s);
  const timespec times[2] = {t, t};
  return ::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0;
}

// Creates `path` only when no file has that name (O_EXCL: atomic, also on NFSv3 and later),
// holding `text`, with mtime `mtime_s` (our clock, not the file server's). false when it exists.
bool CreateExclusive(const std::string& path, const std::string& text, double mtime_s) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const timespec t = ToTimespec(mtime_s);
  const timespec times[2] = {t, t};
  ::futimens(fd, times);
  ::close(fd);
  return ok;
}

Code CodeFromName(std::string_view name) {
  for (int c = 0; c <= static_cast<int>(Code::kInternal); ++c) {
    if (CodeName(static_cast<Code>(c)) == name) return static_cast<Code>(c);
  }
  return Code::kInternal;
}

std::optional<JobState> StateFromName(std::string_view name) {
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed}) {
    if (name == JobStateName(s)) return s;
  }
  return std::nullopt;
}

bool Finished(JobState s) { return s == JobState::kDone || s == JobState::kFailed; }

// "<host>-<pid>-<8 hex>", reduced to [A-Za-z0-9._-]: a folder name and a readable owner.
std::string NewReplicaName() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == 0) std::strcpy(host, "host");
  std::string name;
  for (const char* p = host; *p && name.size() < 64; ++p) {
    const char c = *p;
    const bool plain =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    name += plain ? c : '_';
  }
  std::random_device rd;
  char tail[40];
  std::snprintf(tail, sizeof tail, "-%d-%08x", static_cast<int>(::getpid()), static_cast<unsigned>(rd()));
  return (name.empty() || name[0] == '.' ? "h" + name : name) + tail;
}

json RecordToJson(const JobRecord& r) {
  const JobView& v = r.job;
  json j = {{"id", v.id},          {"state", JobStateName(v.state)}, {"progress", v.progress}, {"name", v.name},
            {"bytes", v.bytes},    {"created", r.created_s},         {"updated", r.updated_s}, {"owner", r.owner},
            {"attempt", r.attempt}};
  if (v.state == JobState::kDone && v.report) j["report"] = *v.report;
  if (v.state == JobState::kFailed) {
    j["error"] = {{"code", std::string(CodeName(v.error.code()))}, {"message", v.error.message()}};
  }
  return j;
}

std::optional<JobRecord> RecordFromJson(const json& j) {
  if (!j.is_object()) return std::nullopt;
  JobRecord r;
  JobView& v = r.job;
  std::optional<JobState> state = StateFromName(j.value("state", ""));
  if (!state) return std::nullopt;
  v.id = j.value("id", "");
  v.state = *state;
  v.progress = j.value("progress", 0.0);
  v.name = j.value("name", "");
  v.bytes = j.value("bytes", int64_t{0});
  r.created_s = j.value("created", 0.0);
  r.updated_s = j.value("updated", 0.0);
  r.owner = j.value("owner", "");
  r.attempt = j.value("attempt", 0);
  if (v.state == JobState::kDone) {
    auto it = j.find("report");
    if (it == j.end()) return std::nullopt;
    v.report = std::make_shared<const json>(*it);
  }
  if (v.state == JobState::kFailed) {
    const json e = j.value("error", json::object());
    Code code = CodeFromName(e.value("code", "internal"));
    if (code == Code::kOk) code = Code::kInternal;
    v.error = Status(code, e.value("message", ""));
  }
  return r;
}

}  // namespace

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued: return "queued";
    case JobState::kRunning: return "running";
    case JobState::kDone: return "done";
    case JobState::kFailed: return "failed";
  }
  return "failed";
}

JobStore::JobStore(std::string dir, double lease_s) : dir_(std::move(dir)), lease_s_(lease_s) {}

Result<std::unique_ptr<JobStore>> JobStore::Open(const std::string& dir, double lease_s) {
  if (dir.empty()) return Status::InvalidArgument("the job store needs a folder");
  if (!(lease_s > 0)) return Status::InvalidArgument("the job lease must be positive");
  std::unique_ptr<JobStore> store(new JobStore(dir, lease_s));
  std::error_code ec;
  for (const char* sub : {"jobs", "active", "incoming"}) {
    fs::create_directories(dir + "/" + sub, ec);
    if (ec) return Status::IoError("cannot make the job store folder " + dir + "/" + sub + ": " + ec.message());
  }
  for (int i = 0; i < 8 && store->upload_dir_.empty(); ++i) {
    store->replica_ = NewReplicaName();
    const std::string up = dir + "/incoming/" + store->replica_;
    if (::mkdir(up.c_str(), 0700) == 0)
      store->upload_dir_ = up;
    else if (errno != EEXIST)
      return Status::IoError("cannot make " + up + ": " + std::strerror(errno));
  }
  if (store->upload_dir_.empty()) return Status::IoError("cannot make an upload folder in " + dir + "/incoming");
  return store;
}

std::string JobStore::JobDir(std::string_view id) const { return dir_ + "/jobs/" + std::string(id); }

std::string JobStore::VideoPath(const std::string& id) const { return JobDir(id) + "/" + kVideoFile; }

std::string JobStore::ClaimPath(std::string_view id, int attempt) const {
  return JobDir(id) + "/claim." + std::to_string(attempt);
}

int JobStore::NewestClaim(std::string_view id) const {
  int k = 0;
  while (Exists(ClaimPath(id, k + 1))) ++k;
  return k;
}

bool JobStore::Lost(const JobClaim& c) const { return Exists(ClaimPath(c.id, c.attempt + 1)); }

bool JobStore::Touch(const JobClaim& c, double when_s) { return SetTimes(ClaimPath(c.id, c.attempt), when_s); }

Status JobStore::WriteState(const JobRecord& r, bool durable) {
  const std::string dir = JobDir(r.job.id);
  const std::string tmp = dir + "/.state." + replica_ + ".tmp";
  const std::string text = RecordToJson(r).dump(-1, ' ', false, json::error_handler_t::replace);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("cannot write the state of job " + r.job.id + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (ok && durable) ok = ::fsync(fd) == 0;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(tmp.c_str(), (dir + "/" + kStateFile).c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Status::IoError("cannot write the state of job " + r.job.id);
  }
  return Status::Ok();
}

Result<JobClaim> JobStore::Create(const std::string& id, const std::string& upload, const std::string& name,
                                  int64_t bytes) {
  if (!IsValidJobId(id)) {
    ::unlink(upload.c_str());
    return Status::InvalidArgument("not a job id");
  }
  // Built in this replica's folder, then published whole by one rename of the folder.
  const std::string staging = upload_dir_ + "/job-" + id;
  auto fail = [&](const std::string& what) -> Status {
    const int err = errno;
    std::error_code ec;
    fs::remove_all(staging, ec);
    ::unlink(upload.c_str());
    ::unlink((dir_ + "/active/" + id).c_str());
    return Status::IoError("job store: " + what + ": " + std::strerror(err));
  };
  if (::mkdir(staging.c_str(), 0755) != 0) return fail("cannot make " + staging);
  if (::rename(upload.c_str(), (staging + "/" + kVideoFile).c_str()) != 0) return fail("cannot move the upload");
  const double now = NowS();
  if (!CreateExclusive(staging + "/claim.1", replica_, now)) return fail("cannot claim the new job");
  JobRecord r;
  r.job.id = id;
  r.job.state = JobState::kQueued;
  r.job.name = name;
  r.job.bytes = bytes;
  r.created_s = r.updated_s = now;
  r.owner = replica_;
  r.attempt = 1;
  const std::string text = RecordToJson(r).dump(-1, ' ', false, json::error_handler_t::replace);
  {
    std::ofstream out(staging + "/" + kStateFile, std::ios::binary);
    if (!(out << text) || !out.flush()) return fail("cannot write the new job's state");
  }
  // The mark first: a job folder without one counts as finished.
  if (!CreateExclusive(dir_ + "/active/" + id, "", now)) return fail("cannot mark the new job active");
  if (::rename(staging.c_str(), JobDir(id).c_str()) != 0) return fail("cannot publish the new job");
  return JobClaim{id, 1};
}

Result<JobRecord> JobStore::Read(std::string_view id) const {
  if (!IsValidJobId(id)) return Status::InvalidArgument("a job id is 32 lowercase hexadecimal digits");
  std::ifstream in(JobDir(id) + "/" + kStateFile, std::ios::binary);
  if (!in) return Status::NotFound("no job " + std::string(id));
  std::stringstream text;
  text << in.rdbuf();
  const json j = json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  std::optional<JobRecord> r = RecordFromJson(j);
  if (!r || r->job.id != id) return Status::IoError("the state of job " + std::string(id) + " is unreadable");
  return *r;
}

bool JobStore::Update(const JobClaim& c, JobRecord r) {
  if (!IsValidJobId(c.id) || Lost(c)) return false;
  Result<JobRecord> now = Read(c.id);
  if (!now.ok() || Finished(now->job.state) || now->attempt > c.attempt) return false;
  const double t = NowS();
  r.job.id = c.id;
  r.owner = replica_;
  r.attempt = c.attempt;
  r.updated_s = t;
  if (!Touch(c, t)) return false;
  return WriteState(r, Finished(r.job.state)).ok();
}

bool JobStore::Finish(const JobClaim& c, JobRecord r) {
  if (!Update(c, std::move(r))) return false;
  ::unlink(VideoPath(c.id).c_str());
  ::unlink((dir_ + "/active/" + c.id).c_str());
  return true;
}

bool JobStore::Renew(const JobClaim& c) {
  if (!IsValidJobId(c.id) || Lost(c)) return false;
  return Touch(c, NowS());
}

void JobStore::Release(const JobClaim& c) {
  if (IsValidJobId(c.id) && !Lost(c)) Touch(c, 0);
}

void JobStore::Heartbeat() { SetTimes(upload_dir_, NowS()); }

std::vector<std::string> JobStore::Orphans() const {
  std::vector<std::pair<double, std::string>> found;  // (made, id)
  std::error_code ec;
  const double now = NowS();
  for (fs::directory_iterator it(dir_ + "/active", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string id = it->path().filename().string();
    if (!IsValidJobId(id)) continue;
    const int k = NewestClaim(id);
    if (k == 0) continue;  // being made, or gone (Collect removes stale marks)
    std::optional<double> lease = LeaseS(ClaimPath(id, k));
    if (lease && *lease + lease_s_ < now) found.emplace_back(MtimeS(it->path().string()).value_or(0), id);
  }
  std::sort(found.begin(), found.end());  // oldest first: first come, first served, across replicas too
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

std::optional<std::pair<JobClaim, JobRecord>> JobStore::Reclaim(const std::string& id) {
  if (!IsValidJobId(id)) return std::nullopt;
  const int k = NewestClaim(id);
  if (k == 0) return std::nullopt;
  const double now = NowS();
  std::optional<double> lease = LeaseS(ClaimPath(id, k));
  if (!lease || *lease + lease_s_ >= now) return std::nullopt;
  if (!CreateExclusive(ClaimPath(id, k + 1), replica_, now)) return std::nullopt;  // another replica won
  const JobClaim claim{id, k + 1};
  Result<JobRecord> r = Read(id);
  if (!r.ok()) {
    // No readable state (a half-deleted job): nothing to scan.
    ::unlink((dir_ + "/active/" + id).c_str());
    return std::nullopt;
  }
  if (Finished(r->job.state)) {  // its owner finished it and died before removing the mark
    ::unlink((dir_ + "/active/" + id).c_str());
    return std::nullopt;
  }
  JobRecord rec = *r;
  rec.job.state = JobState::kQueued;
  rec.job.progress = 0;
  if (!Update(claim, rec)) return std::nullopt;
  rec.owner = replica_;
  rec.attempt = claim.attempt;
  return std::make_pair(claim, rec);
}

size_t JobStore::Collect(double keep_s, size_t max_kept) {
  std::error_code ec;
  const double now = NowS();
  const double silent_s = std::max(60.0, 10 * lease_s_);
  // Upload folders of replicas gone silent (a live one's Heartbeat keeps its mtime fresh).
  for (fs::directory_iterator it(dir_ + "/incoming", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string path = it->path().string();
    if (path == upload_dir_) continue;
    std::optional<double> m = MtimeS(path);
    std::error_code rec;
    if (m && *m + silent_s < now) fs::remove_all(path, rec);
  }
  // Marks without a job folder: a replica died while making the job.
  ec.clear();
  for (fs::directory_iterator it(dir_ + "/active", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string id = it->path().filename().string();
    std::optional<double> m = MtimeS(it->path().string());
    if (m && *m + silent_s < now && (!IsValidJobId(id) || !Exists(JobDir(id)))) ::unlink(it->path().c_str());
  }
  // Finished jobs: those without a mark; their state.json's mtime is when they finished.
  std::vector<std::pair<double, std::string>> finished;
  ec.clear();
  for (fs::directory_iterator it(dir_ + "/jobs", ec), end; !ec && it != end; it.increment(ec)) {
    const std::string id = it->path().filename().string();
    if (!IsValidJobId(id) || Exists(dir_ + "/active/" + id)) continue;
    std::optional<double> m = MtimeS(JobDir(id) + "/" + kStateFile);
    finished.emplace_back(m.value_or(0), id);
  }
  std::sort(finished.begin(), finished.end(), std::greater<>());  // newest first
  size_t removed = 0;
  for (size_t i = 0; i < finished.size(); ++i) {
    const auto& [finished_s, id] = finished[i];
    if (i < max_kept && finished_s + keep_s >= now) continue;
    if (Exists(dir_ + "/active/" + id)) continue;  // made after the listing
    // Renamed away first, so readers see "gone" at once and two collectors do not collide.
    const std::string doomed = upload_dir_ + "/gone-" + id;
    if (::rename(JobDir(id).c_str(), doomed.c_str()) != 0) continue;
    std::error_code rec;
    fs::remove_all(doomed, rec);
    ++removed;
  }
  return removed;
}

}  // namespace deepscan::serve
