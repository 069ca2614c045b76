// report/: turns verdicts into JSON, CSV or text. docs/output.md documents every field and
// docs/scan-result.schema.json is the JSON Schema the JSON form is tested against.
#ifndef DEEPSCAN_REPORT_REPORT_H_
#define DEEPSCAN_REPORT_REPORT_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepscan/options.h"
#include "deepscan/verdict.h"

namespace deepscan::report {

inline constexpr int kSchemaVersion = 1;

struct ScanReport {
  ModelInfo model;
  ScanOptions options;
  std::vector<VideoVerdict> videos;
};

enum class Format { kJson, kCsv, kText };

// The "model" object of the report (also in the server's answers).
// The name of a sampling policy, as the JSON report, the CLI and the result cache spell it.
const char* SamplingPolicyName(SamplingPolicy policy);

nlohmann::json ModelToJson(const ModelInfo& m);

// One face as JSON (an element of "frames[].faces"; also in the server's /v1/frames answer).
nlohmann::json FaceToJson(const FaceResult& face);
// `x` rounded to `digits` decimals, as every number in the JSON output is (4 for scores, 3 for
// seconds, 1 for pixels).
double Round(double x, int digits);

// One video as JSON (the "videos[]" element of the report; also the server's result body).
nlohmann::json VideoToJson(const VideoVerdict& v);

// The inverse of VideoToJson (src/report/verdict_json.cc): reads one "videos[]" element back,
// every field, to the precision VideoToJson wrote (so VideoToJson(VideoFromJson(j)) == j for
// any j that VideoToJson wrote). Values outside the documented ranges, wrong types and missing
// fields are errors (kCorruptInput, naming the field); unknown fields are ignored. Never throws.
// Derived fields are checked, not trusted: top_frames[].frame must index `frames`.
Result<VideoVerdict> VideoFromJson(const nlohmann::json& j);

// The whole report in `format`. Text output is meant for people and may change; JSON and CSV
// are stable interfaces.
std::string Render(const ScanReport& report, Format format);

}  // namespace deepscan::report

#endif  // DEEPSCAN_REPORT_REPORT_H_
