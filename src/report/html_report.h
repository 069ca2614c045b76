// report::RenderHtml: a scan as one self-contained HTML page for people, to read, attach and
// archive (`deepscan scan --format html`, `GET /v1/jobs/{id}?format=html`; docs/output.md).
//
// Basic usage:
//   report::HtmlReport html;
//   html.scan = rep;                                   // model, options and verdicts, as for Render
//   html.options = report::OptionRows(rep.options, rep.model);
//   html.card = report::LoadModelCard(rep.model.path, rep.model.name);
//   std::string page = report::RenderHtml(html);
//
// In:  the verdicts (with VideoVerdict::crops when the scan kept them: ScanOptions::report_crops),
//      the model, the options as rows, what the model's card says, a creation time.
// Out: one HTML5 document, UTF-8, that needs nothing else: no script, no external request of any
//      kind (a Content-Security-Policy meta tag forbids them; styles inline, images as data: URIs).
//      - with more than one video, a summary table on top (one row per video, linking to it);
//      - per video (section#video-N, N from 1): the verdict, the video's facts, warnings, a
//        timeline plot (inline SVG, below), one row per identity with its most suspicious face
//        crops (JPEG) and, where a crop has one, the blend heatmap over it; the most suspicious
//        frames. A failed video shows its error code and message; a video without a face says so;
//      - the model (name, version, backend, device, threshold, calibration) and its card's
//        intended use and known limits; the options used.
//      The timeline's x axis runs from video.start_s to start_s + duration_s (to the last sampled
//      frame when the duration is unknown), its y axis from score 0 (bottom) to 1 (top); one
//      circle.frame-dot per scored frame (data-t = its timestamp, data-score), a line.threshold
//      at the threshold, one rect.segment per suspicious segment, ticks g.xtick / g.ytick with
//      their values as text. Scores are shown to 3 decimals, seconds to 2 (the axis labels with
//      the decimals their step needs).
//      Every string that comes from input (paths, messages, warnings, codec and model names, the
//      card's text) is HTML-escaped, and invalid UTF-8 in it becomes U+FFFD.
// Threading: pure functions, thread-safe.
#ifndef DEEPSCAN_REPORT_HTML_REPORT_H_
#define DEEPSCAN_REPORT_HTML_REPORT_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "report/base64.h"
#include "report/model_card.h"
#include "report/report.h"

namespace deepscan::report {

using OptionRow = std::pair<std::string, std::string>;  // (what, with its flag; value given or defaulted)

// The options of a scan that shape its results, as `deepscan scan` flags and their values.
std::vector<OptionRow> OptionRows(const ScanOptions& options, const ModelInfo& model);

struct HtmlReport {
  ScanReport scan;                 // model, verdicts (scan.options is not read: see `options`)
  std::vector<OptionRow> options;  // "options used", in this order
  ModelCard card;
  std::string created;     // when the scan was made, shown as given ("" = not shown)
  std::string crops_note;  // why a scored video has no crops, when it has none (e.g. the
                           // server keeps none); "" = the scan was not asked to keep them
};

// The page described above.
std::string RenderHtml(const HtmlReport& report);

// The report a `deepscan scan --format json` document describes (the server's job results): its
// model, options object (as rows) and videos (VideoFromJson). Errors: kCorruptInput.
Result<HtmlReport> HtmlReportFromJson(const nlohmann::json& doc);

// `text` with & < > " ' as character references and invalid UTF-8 (and control characters
// other than tab, LF, CR) as U+FFFD: safe in element content and in quoted attribute values.
std::string HtmlEscape(std::string_view text);


}  // namespace deepscan::report

#endif  // DEEPSCAN_REPORT_HTML_REPORT_H_
