// queue/entry: the records the work queue keeps in Redis, and their codecs. Everything read
// back from Redis is checked here (anyone who can write to the Redis can write these keys), so
// the decoders take untrusted bytes: fuzzed by fuzz/queue_entry_fuzz.cc.
//
//   VideoEntry     one stream entry of <name>:videos: the fields
//                    v=1  video=<path or URL>  [name=<display name>]  [job=<32 hex>]  [bytes=<upload size>]
//                    submitted=<unix s>
//   ResultRecord   one value of <name>:results (keyed by the result key): JSON
//                    {"format":1, "key", "video", "entry", "worker", "attempt", "scanned_at",
//                     "verdict": report::VideoToJson,
//                     ["crops": [{"track_id", "frame", "face", "score", "jpeg": base64, "heatmap": base64}]]}
//   DoneRecord     one value of <name>:done (keyed by entry id): JSON
//                    {"format":1, "key", "video", "name", "worker", "finished_at", "cached"}
//   FailureRecord  one value of <name>:failed and of <name>:errors (keyed by entry id): JSON
//                    {"format":1, "video", "entry", "worker", "attempts", "failed_at",
//                     "error": {"code", "message"}}
// Threading: pure functions.
#ifndef DEEPSCAN_QUEUE_ENTRY_H_
#define DEEPSCAN_QUEUE_ENTRY_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "deepscan/status.h"
#include "deepscan/verdict.h"

namespace deepscan::queue {

inline constexpr size_t kMaxVideoBytes = 4096;  // longest path or URL an entry may hold
inline constexpr size_t kMaxNameBytes = 1024;   // longest display name

struct VideoEntry {
  std::string id;       // the stream entry id ("1700000000000-0"); "" before XADD
  std::string video;    // a path on storage every worker sees, or a URL
  std::string name;     // the name reports use for the video; "" = `video`
  std::string job;      // the serve job this entry belongs to (32 hex); "" for `deepscan submit`
  int64_t bytes = -1;   // a serve job's upload size; -1 = not given
  double submitted_s = 0;  // Unix time of the submission
};

// The stream fields of `e` (without the id), in order: "v", "1", "video", ..., as XADD takes them.
std::vector<std::string> EncodeEntry(const VideoEntry& e);
// Reads a stream entry's flat field list back. Errors: kCorruptInput (odd count, missing or
// unknown version, empty, oversized or NUL-holding video, oversized name, a job that is not 32
// lowercase hex digits, a submitted time that is not a finite number). Unknown fields are ignored.
Result<VideoEntry> DecodeEntry(std::string id, const std::vector<std::string>& fields);

// True for "a://..." style inputs, which are neither hashed nor stat'ed locally.
bool IsUrl(std::string_view video);
// A stream entry id "<ms>-<seq>": digits, one '-', digits.
bool ValidEntryId(std::string_view id);

struct ResultRecord {
  std::string key;       // the result key (pipeline::ResultKey): content hash + configuration
  std::string video;     // the video as submitted (first submission that produced this result)
  std::string entry;     // the entry id whose scan produced it
  std::string worker;    // the worker that scanned it
  int attempt = 1;       // the delivery that scanned it
  double scanned_at = 0;  // Unix time
  VideoVerdict verdict;   // status kOk or kNoFace; verdict.crops travel too (serve --report-crops)
};
inline constexpr size_t kMaxCrops = 256;            // crops a result may hold
inline constexpr size_t kMaxCropBytes = 1u << 20;   // one crop's JPEG or heatmap PNG
std::string EncodeResult(const ResultRecord& r);
// Errors: kCorruptInput (not JSON, wrong format, fields missing or of the wrong type, a verdict
// report::VideoFromJson refuses, crops that are not well-formed or exceed the limits above).
Result<ResultRecord> DecodeResult(std::string_view json);

struct DoneRecord {
  std::string key;         // the result key: HGET <name>:results <key> gives the ResultRecord
  std::string video;       // this entry's video (several entries may share one result)
  std::string name;        // this entry's display name ("" = video)
  std::string worker;      // who finished it
  double finished_at = 0;  // Unix time
  bool cached = false;     // the result existed already (same content scanned before): no scan
};
std::string EncodeDone(const DoneRecord& d);
Result<DoneRecord> DecodeDone(std::string_view json);  // errors as DecodeResult

struct FailureRecord {
  std::string video;
  std::string entry;
  std::string worker;
  int attempts = 0;       // deliveries made before giving up
  double failed_at = 0;   // Unix time
  Status error;           // never OK
};
std::string EncodeFailure(const FailureRecord& f);
// Errors: kCorruptInput (as DecodeResult; an error code name we do not know).
Result<FailureRecord> DecodeFailure(std::string_view json);

// The Code whose CodeName is `name`; false when there is none.
bool CodeFromName(std::string_view name, Code* code);

}  // namespace deepscan::queue

#endif  // DEEPSCAN_QUEUE_ENTRY_H_
