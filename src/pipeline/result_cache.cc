#include "pipeline/result_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "deepscan/version.h"
#include "infer/model_metadata.h"
#include "report/report.h"

namespace deepscan::pipeline {
namespace {

using nlohmann::json;

constexpr size_t kChunk = size_t{1} << 20;             // read size for content hashing
constexpr int64_t kMaxEntryBytes = int64_t{64} << 20;  // larger entry files are damaged
constexpr size_t kMaxRemembered = 4096;                // content hashes kept between Get and Put

bool IsUrl(const std::string& s) { return s.find("://") != std::string::npos; }

std::string Hex(const XXH128_hash_t& h) {
  char buf[33];
  std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return buf;
}

std::string Errno() { return std::strerror(errno); }

// Closes a file descriptor on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads the whole (small) file at `path` into `out`; false when it cannot.
bool ReadSmallFile(const std::string& path, std::string* out) {
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) return false;
  struct stat st {};
  if (::fstat(f.fd, &st) != 0 || st.st_size > kMaxEntryBytes) return false;
  out->resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < out->size()) {
    ssize_t n = ::read(f.fd, out->data() + done, out->size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // error, or the file shrank under us
    done += static_cast<size_t>(n);
  }
  return true;
}

Status WriteAll(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError("cannot write " + path + ": " + Errno());
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

}  // namespace

Result<FileDigest> HashFile(const std::string& path) {
  const auto start = std::chrono::steady_clock::now();
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) {
    if (errno == ENOENT) return Status::NotFound("no such file: " + path);
    return Status::IoError("cannot open " + path + ": " + Errno());
  }
  ::posix_fadvise(f.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), XXH3_freeState);
  if (!state || XXH3_128bits_reset(state.get()) != XXH_OK) return Status::Internal("xxHash state allocation failed");
  std::vector<char> buf(kChunk);
  FileDigest d;
  while (true) {
    ssize_t n = ::read(f.fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::IoError("cannot read " + path + ": " + Errno());
    if (n == 0) break;
    XXH3_128bits_update(state.get(), buf.data(), static_cast<size_t>(n));
    d.bytes += n;
  }
  d.hex = Hex(XXH3_128bits_digest(state.get()));
  d.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return d;
}

std::string HashBytes(const std::string& bytes) { return Hex(XXH3_128bits(bytes.data(), bytes.size())); }

json ResultOptions(const ScanOptions& o) {
  const SamplingOptions& s = o.sampling;
  const DetectorOptions& d = o.detector;
  json j = {{"sampling",
             {{"policy", report::SamplingPolicyName(s.policy)},
              {"frames", s.frames},
              {"fallback_interval_s", s.fallback_interval_s},
              {"candidates", s.candidates},
              {"skip_nonref", s.skip_nonref},
              {"dedupe", s.dedupe},
              {"dedupe_bits", s.dedupe_bits}}},
            {"detector",
             {{"score_threshold", d.score_threshold},
              {"nms_iou", d.nms_iou},
              {"tiling", d.tiling},
              {"tile_min_side", d.tile_min_side},
              {"max_faces", d.max_faces},
              {"min_face_px", d.min_face_px},
              {"detect_every", d.detect_every}}},
            {"tracking", {{"min_iou", o.tracking.min_iou}, {"max_gap", o.tracking.max_gap}}},
            {"crop", {{"margin", o.crop.margin}}},
            {"aggregation",
             {{"strategy", AggregationName(o.aggregation.strategy)},
              {"threshold", o.aggregation.threshold},
              {"top_frames", o.aggregation.top_frames}}},
            {"max_pixels", o.max_pixels}};
  // Only where it matters, so that the keys of results stored before it existed stay valid.
  if (o.aggregation.strategy == Aggregation::kTopMean) j["aggregation"]["top_fraction"] = o.aggregation.top_fraction;
  if (o.classifier.flip_tta) j["tta"] = "flip";
  return j;
}

Result<std::string> ConfigHash(const ScanOptions& options, const ModelInfo& model) {
  // The model files' bytes, so that retraining under the same name and version still misses.
  auto file_hash = [](const std::string& path, bool required) -> Result<json> {
    if (path.empty() && !required) return json(nullptr);
    if (!required && !std::filesystem::exists(path)) return json(nullptr);
    Result<FileDigest> d = HashFile(path);
    if (!d.ok()) return Status::InvalidModel("cannot hash the model file for the cache: " + d.status().message());
    return json(d->hex);
  };
  ASSIGN_OR_RETURN(json classifier, file_hash(options.classifier.model_path, true));
  ASSIGN_OR_RETURN(json metadata, file_hash(infer::MetadataPathFor(options.classifier.model_path), false));
  ASSIGN_OR_RETURN(json detector, file_hash(options.detector.model_path, false));
  ASSIGN_OR_RETURN(json refinder, file_hash(options.detector.refind_model_path, false));
  const json config = {{"cache_format", kCacheFormat},
                       {"deepscan_version", kVersion},
                       {"model",
                        {{"name", model.name},
                         {"version", model.version},
                         {"threshold", model.threshold},
                         {"trained", model.trained},
                         {"classifier_xxh3", classifier},
                         {"metadata_xxh3", metadata},
                         {"detector_xxh3", detector},
                         {"refind_detector_xxh3", refinder}}},
                       {"options", ResultOptions(options)}};
  return HashBytes(config.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string ResultKey(const std::string& content_hex, const std::string& config_hash) {
  return HashBytes(content_hex + config_hash);
}

Result<std::unique_ptr<ResultCache>> ResultCache::Open(const ScanOptions& options, const ModelInfo& model) {
  if (options.cache_dir.empty()) return Status::InvalidArgument("no cache directory given");
  std::error_code ec;
  std::filesystem::create_directories(options.cache_dir, ec);
  if (ec || !std::filesystem::is_directory(options.cache_dir, ec)) {
    return Status::IoError("cannot create the cache directory " + options.cache_dir +
                           (ec ? ": " + ec.message() : std::string()));
  }
  ASSIGN_OR_RETURN(std::string config_hash, ConfigHash(options, model));
  auto cache = std::unique_ptr<ResultCache>(new ResultCache());
  cache->dir_ = options.cache_dir;
  cache->config_hash_ = std::move(config_hash);
  return cache;
}

Result<std::string> ResultCache::Key(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("no such file: " + path);
    return Status::IoError("cannot stat " + path + ": " + Errno());
  }
  Remembered now;
  now.device = static_cast<uint64_t>(st.st_dev);
  now.inode = static_cast<uint64_t>(st.st_ino);
  now.size = static_cast<int64_t>(st.st_size);
  now.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = remembered_.find(path);
    if (it != remembered_.end() && it->second.device == now.device && it->second.inode == now.inode &&
        it->second.size == now.size && it->second.mtime_ns == now.mtime_ns) {
      return ResultKey(it->second.content_hex, config_hash_);
    }
  }
  ASSIGN_OR_RETURN(FileDigest d, HashFile(path));  // outside the lock: other threads go on
  now.content_hex = d.hex;
  {
    std::lock_guard<std::mutex> lock(mu_);
    hashed_bytes_ += d.bytes;
    hashing_seconds_ += d.seconds;
    if (remembered_.size() >= kMaxRemembered) remembered_.clear();
    remembered_[path] = now;
  }
  return ResultKey(d.hex, config_hash_);
}

std::string ResultCache::PathForKey(const std::string& key) const {
  return dir_ + "/" + key.substr(0, 2) + "/" + key + ".json";
}

Result<std::string> ResultCache::EntryPath(const std::string& path) {
  ASSIGN_OR_RETURN(std::string key, Key(path));
  return PathForKey(key);
}

std::optional<VideoVerdict> ResultCache::Get(const std::string& path) {
  if (IsUrl(path)) return std::nullopt;
  Result<std::string> key = Key(path);
  if (!key.ok()) return std::nullopt;
  std::string text;
  if (!ReadSmallFile(PathForKey(*key), &text)) return std::nullopt;
  const json entry = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!entry.is_object()) return std::nullopt;
  auto format = entry.find("format");
  auto stored_key = entry.find("key");
  auto verdict = entry.find("verdict");
  if (format == entry.end() || *format != kCacheFormat || stored_key == entry.end() || *stored_key != *key ||
      verdict == entry.end()) {
    return std::nullopt;
  }
  Result<VideoVerdict> v = report::VideoFromJson(*verdict);
  if (!v.ok() || v->status == VideoStatus::kError) return std::nullopt;
  v->path = path;
  v->timings.cache_hit = true;
  return std::move(*v);
}

Status ResultCache::Put(const std::string& path, const VideoVerdict& v) {
  if (IsUrl(path) || v.status == VideoStatus::kError) return Status::Ok();
  ASSIGN_OR_RETURN(std::string key, Key(path));
  {
    // The Get-then-Put pair is done with this path: forget it (a later scan rehashes).
    std::lock_guard<std::mutex> lock(mu_);
    remembered_.erase(path);
  }
  VideoVerdict stored = v;
  stored.timings.cache_hit = false;
  const json entry = {{"format", kCacheFormat}, {"key", key}, {"verdict", report::VideoToJson(stored)}};
  const std::string text = entry.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";

  const std::string final_path = PathForKey(key);
  const std::string subdir = dir_ + "/" + key.substr(0, 2);
  if (::mkdir(subdir.c_str(), 0777) != 0 && errno != EEXIST) {
    return Status::IoError("cannot create " + subdir + ": " + Errno());
  }
  uint64_t n = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = temp_counter_++;
  }
  // Unique among threads (counter) and processes (pid) sharing the directory.
  const std::string temp = final_path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(n);
  {
    Fd f{::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666)};
    if (f.fd < 0) return Status::IoError("cannot create " + temp + ": " + Errno());
    Status st = WriteAll(f.fd, text, temp);
    const int closed = ::close(f.fd);
    f.fd = -1;
    if (st.ok() && closed != 0) st = Status::IoError("cannot write " + temp + ": " + Errno());
    if (!st.ok()) {
      ::unlink(temp.c_str());
      return st;
    }
  }
  if (::rename(temp.c_str(), final_path.c_str()) != 0) {
    Status st = Status::IoError("cannot rename " + temp + " to " + final_path + ": " + Errno());
    ::unlink(temp.c_str());
    return st;
  }
  return Status::Ok();
}

int64_t ResultCache::hashed_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hashed_bytes_;
}

double ResultCache::hashing_seconds() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hashing_seconds_;
}

}  // namespace deepscan::pipeline
