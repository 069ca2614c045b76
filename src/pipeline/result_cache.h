// pipeline::ResultCache: verdicts of files already scanned, found again by content.
//
// In:  a local video path (and, for Put, its finished verdict).
// Out: the stored verdict when the same bytes were scanned before with the same model and the
//      same result-changing options; none otherwise.
// How: key = XXH3-128 of (XXH3-128 of the whole file, streamed in 1 MiB chunks) + (XXH3-128 of
//      the configuration: deepscan version, cache format, model name/version/threshold, the bytes
//      of the classifier, its metadata and the detector, and every option that changes results:
//      sampling, detector, tracking, crop, aggregation, max_pixels; not threads, batch size,
//      backend/device, pipeline or timeout). Renaming or copying a file keeps its entry; changing
//      one byte, the model or such an option misses. The value is report::VideoToJson of the
//      verdict inside {"format", "key", "verdict"}, written to a temporary file in the same
//      directory and renamed to DIR/<first 2 hex of key>/<key>.json, so a reader never sees half
//      an entry. A file that does not parse, belongs to another key or fails
//      report::VideoFromJson is a miss and the next Put replaces it. Only kOk and kNoFace
//      verdicts are stored (errors may be transient); URLs are neither looked up nor stored.
//      The content hash of a path is remembered (by device, inode, size and modification time)
//      between Get and Put, so a miss followed by a Put reads the file once.
// Threading: Get and Put may be called from any number of threads at once, also by several
//      processes sharing DIR (the rename is atomic; the last writer of a key wins).
#ifndef DEEPSCAN_PIPELINE_RESULT_CACHE_H_
#define DEEPSCAN_PIPELINE_RESULT_CACHE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "deepscan/verdict.h"

namespace deepscan::pipeline {

inline constexpr int kCacheFormat = 1;  // raised when the entry layout or VideoToJson changes meaning

struct FileDigest {
  std::string hex;     // XXH3-128, 32 lowercase hex digits (high 64 bits first)
  int64_t bytes = 0;   // bytes hashed
  double seconds = 0;  // wall time spent reading and hashing
};

// XXH3-128 of the file at `path`, read in 1 MiB chunks. Errors: kNotFound, kIoError.
Result<FileDigest> HashFile(const std::string& path);

// XXH3-128 of `bytes` as 32 hex digits.
std::string HashBytes(const std::string& bytes);

// The options that change a verdict, as a JSON object (the part of the cache key's configuration
// that comes from ScanOptions; model paths are replaced by the hashes of the files elsewhere).
nlohmann::json ResultOptions(const ScanOptions& options);

// XXH3-128 (hex) of the configuration under which verdicts are shared: the deepscan version, the
// cache format, the model's name/version/threshold, the bytes of its files and ResultOptions.
// Reads and hashes the model files. Errors: kInvalidModel (a model file cannot be read).
Result<std::string> ConfigHash(const ScanOptions& options, const ModelInfo& model);
// The key of a file whose content hashes to `content_hex` (HashFile) under `config_hash`: the
// ResultCache's entry name, also the key of the work queue's results (queue/work_queue.h).
std::string ResultKey(const std::string& content_hex, const std::string& config_hash);

class ResultCache {
 public:
  // A cache in options.cache_dir (created when missing) for scans made with `options` by a scanner
  // whose model is `model`. Reads and hashes the classifier (and its metadata file, when present)
  // and the detector once. Errors: kInvalidArgument (cache_dir empty), kIoError (cannot create
  // the directory), kInvalidModel (a model file cannot be read).
  static Result<std::unique_ptr<ResultCache>> Open(const ScanOptions& options, const ModelInfo& model);

  // The cached verdict of `path` with `path` set to the argument and timings.cache_hit true (the
  // other timings are those of the scan that filled the entry); none for a URL, an unreadable
  // file, a missing entry or a damaged one.
  std::optional<VideoVerdict> Get(const std::string& path);

  // Stores `v` as the verdict of `path`. Does nothing (OK) for a URL or a verdict whose status is
  // kError. Errors: kNotFound / kIoError (the file or the entry cannot be read or written).
  Status Put(const std::string& path, const VideoVerdict& v);

  // The entry file that Get and Put use for `path`'s current content. Errors: as HashFile.
  Result<std::string> EntryPath(const std::string& path);

  // XXH3-128 of the configuration (hex); equal for two caches exactly when their entries are shared.
  const std::string& config_hash() const { return config_hash_; }
  const std::string& dir() const { return dir_; }

  // Content hashing done so far (Get, Put and EntryPath together), for throughput figures.
  int64_t hashed_bytes() const;
  double hashing_seconds() const;

 private:
  ResultCache() = default;
  // Key of the file's content under this configuration, hashing it unless remembered.
  Result<std::string> Key(const std::string& path);
  std::string PathForKey(const std::string& key) const;

  std::string dir_;
  std::string config_hash_;
  struct Remembered {
    uint64_t device = 0, inode = 0;
    int64_t size = 0, mtime_ns = 0;
    std::string content_hex;
  };
  mutable std::mutex mu_;  // guards the members below
  std::map<std::string, Remembered> remembered_;
  int64_t hashed_bytes_ = 0;
  double hashing_seconds_ = 0;
  uint64_t temp_counter_ = 0;
};

}  // namespace deepscan::pipeline

#endif  // DEEPSCAN_PIPELINE_RESULT_CACHE_H_
