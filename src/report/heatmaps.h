// report::WriteHeatmaps: the blend heatmaps of one scanned video as image files, for people and
// for tools (`deepscan scan --heatmaps DIR`; docs/output.md).
//
// In:  a verdict whose `crops` were kept (ScanOptions::report_crops > 0) by a model with a heatmap
//      output (ModelInfo::heatmaps): each FaceCrop with a non-empty heatmap_png.
// Out: per such crop two PNG files in `dir`, named
//        <stem>.t<track>.f<frame>.face<k>.png       the crop with the heatmap over it in red
//                                                   (opacity = the heatmap, 0..1)
//        <stem>.t<track>.f<frame>.face<k>.mask.png  the heatmap itself: 8-bit grey, crop-sized,
//                                                   0 = no blending seen .. 255 = certainly blended
//      and the first one's path (dir/name) in frames[frame].faces[k].heatmap, so the JSON report
//      says which faces have one. Crops without a heatmap are skipped. Returns the files' count /2.
// Errors: kIoError (a file could not be written; what was written stays), kCorruptInput (a crop's
//      JPEG or PNG does not decode, or names a frame/face the verdict does not have).
// Threading: no shared state; one call per video.
#ifndef DEEPSCAN_REPORT_HEATMAPS_H_
#define DEEPSCAN_REPORT_HEATMAPS_H_

#include <string>

#include "deepscan/status.h"
#include "deepscan/verdict.h"

namespace deepscan::report {

Result<int> WriteHeatmaps(const std::string& dir, const std::string& stem, VideoVerdict* v);

}  // namespace deepscan::report

#endif  // DEEPSCAN_REPORT_HEATMAPS_H_
