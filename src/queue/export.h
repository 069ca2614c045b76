// queue/export: the queue's outcomes as a file, for `deepscan status --export FILE`.
//
// In:  every finished entry of a WorkQueue (done and dead-lettered), in submission order.
// Out: FILE.jsonl: one JSON object per entry:
//        {"entry", "video", "name", "hash", "status" ("ok" | "no_face" | "error"), "label", "score",
//         "threshold", "identities": [{"track_id", "score", "label"}], "timings": {open_s, decode_s,
//         convert_s, detect_s, classify_s, total_s, frames_sampled}, "worker", "attempts",
//         "error": {"code", "message"} | null, "verdict": the full verdict (docs/output.md) | null}
//      FILE.h5 (or .hdf5): one dataset per column, all of one length N, in the root group:
//        entry, path, name, hash, status, label, worker, error_code, error_message   strings (UTF-8, variable)
//        score, threshold, open_s, decode_s, convert_s, detect_s, classify_s, total_s   float64 (NaN = none)
//        frames_sampled, attempts                                                       int64
//        identity_scores   variable-length float32 per row (one per identity, most suspicious first)
//        identity_ids      variable-length int32 per row (their track ids)
//      and the root attributes format = "deepscan-queue-results", format_version = 1.
//      Parquet: not written; no Parquet library is packaged for this machine (docs/queue.md).
// Threading: uses the queue's connection: the caller's thread only.
#ifndef DEEPSCAN_QUEUE_EXPORT_H_
#define DEEPSCAN_QUEUE_EXPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepscan/status.h"
#include "queue/work_queue.h"

namespace deepscan::queue {

// One entry's row, as both formats write it.
struct ExportRow {
  std::string entry, video, name, hash, status, label, worker;
  double score = 0, threshold = 0;  // NaN when the verdict has none
  bool has_score = false;
  std::vector<float> identity_scores;
  std::vector<int> identity_ids;
  StageTimings timings;
  int64_t attempts = 0;
  Status error;              // not OK for dead-lettered entries
  nlohmann::json verdict;    // null for dead-lettered entries
};

ExportRow RowOf(const Outcome& o);
nlohmann::json RowToJson(const ExportRow& row);

// Writes `rows` to `path`, chosen by its extension (.jsonl / .json-lines, .h5 / .hdf5).
// Errors: kInvalidArgument (another extension: ".parquet" says why it is not written),
// kIoError (cannot write).
Status WriteRows(const std::vector<ExportRow>& rows, const std::string& path);

// ForEachOutcome + RowOf + WriteRows. Returns the rows written.
Result<int64_t> ExportResults(WorkQueue& queue, const std::string& path);

}  // namespace deepscan::queue

#endif  // DEEPSCAN_QUEUE_EXPORT_H_
