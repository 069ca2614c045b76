// video::LumaReader and frame statistics: cheap measurements of decoded frames, for the sampling
// policies (which of several candidate frames to keep) and for spotting near-duplicate frames.
//
// In:  a decoded AVFrame (a FrameRef's) of any pixel format; hardware frames are downloaded once.
// Out: small 8-bit luma images (LumaReader) and numbers computed on them by pure functions:
//      sharpness (Laplacian variance), exposure (mean, crushed and blown fractions), histogram
//      entropy, mean absolute difference (motion), histogram distance (scene cuts), 64-bit dHash.
// How: the luma is read in place, without colour conversion, for planar and semi-planar YUV and
//      grey (8-bit, or 9..16-bit little-endian) and for packed 8-bit pixels (RGB24, BGRA, YUYV...:
//      BT.601 weights for RGB); only the pixels a view needs are touched (nearest-pixel decimation
//      to 4x the target size, then exact 2x area halvings). Other formats (planar RGB, big-endian,
//      palette, float...) go through swscale to GRAY8, which costs milliseconds at 1080p. Images
//      are in stored orientation (display rotation is not applied). The thumbnail is full-range
//      (limited-range video is stretched so that 16..235 becomes 0..255); centre and probe are not.
// Cost (1080p YUV 4:2:0, CPU time on one core): LumaReader::Load + MeasureFrame 0.25 ms, a probe
//      1.7 us (bench/micro_bench: BM_FrameStats, BM_LumaProbe).
// Threading: one LumaReader per thread (it owns swscale contexts and buffers); the free
//      functions are pure and thread-safe.
#ifndef DEEPSCAN_VIDEO_FRAME_STATS_H_
#define DEEPSCAN_VIDEO_FRAME_STATS_H_

#include <cstdint>
#include <memory>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "video/source.h"

struct AVFrame;

namespace deepscan::video {

inline constexpr int kThumbnailWidth = 160;  // LumaReader::Thumbnail width (narrower frames keep theirs)
inline constexpr int kCentreWidth = 480;     // LumaReader::Centre width used by MeasureFrame
inline constexpr int kProbeCols = 64;        // LumaReader::Probe grid used for per-frame cut detection
inline constexpr int kProbeRows = 36;

class LumaReader {
 public:
  LumaReader();
  ~LumaReader();
  LumaReader(const LumaReader&) = delete;
  LumaReader& operator=(const LumaReader&) = delete;

  // Makes `frame` the one the views below read. Hardware frames are downloaded here (once). The
  // frame must stay alive and unchanged until the next Load. Errors: kCorruptInput (empty frame
  // or a pixel format swscale cannot read), kInternal (a failed download).
  Status Load(const AVFrame* frame);

  // Area-averaged, full-range luma kThumbnailWidth pixels wide (frames narrower than that keep
  // their width), aspect ratio kept; CV_8UC1, owned by the caller.
  Status Thumbnail(cv::Mat* thumb);
  // The central half (in width and height) of the luma, area-downscaled to at most `max_width`
  // pixels wide: the detail sharpness is measured on. CV_8UC1; may be a view into the frame,
  // valid until the next Load.
  Status Centre(int max_width, cv::Mat* centre);
  // `cols` x `rows` luma samples on an even grid (nearest pixel): a few microseconds even for
  // 4K frames, meant for every decoded frame. CV_8UC1, owned by the caller.
  Status Probe(int cols, int rows, cv::Mat* probe);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct Exposure {
  double mean = 0;             // mean luma, 0..255
  double dark_fraction = 0;    // fraction of pixels below 16 (crushed blacks)
  double bright_fraction = 0;  // fraction of pixels above 235 (blown highlights)
};

// The statistics the sampling policies weigh, from one frame's thumbnail and centre.
struct FrameStats {
  double sharpness = 0;  // Sharpness() of the centre
  Exposure exposure;     // of the thumbnail
  double entropy = 0;    // Entropy() of the thumbnail
  uint64_t dhash = 0;    // DHash() of the thumbnail
};

// Measures the frame loaded in `reader`; `thumb` (optional) receives its thumbnail, for motion.
// Errors: those of LumaReader.
Status MeasureFrame(LumaReader* reader, FrameStats* stats, cv::Mat* thumb = nullptr);

// Variance of the 3x3 Laplacian of an 8-bit image: high for sharp detail, low when blurred.
// It scales with contrast squared, so compare frames of one scene. 0 for images under 3x3.
double Sharpness(const cv::Mat& luma);
// Mean and clipped fractions of an 8-bit image (use the full-range thumbnail).
Exposure MeasureExposure(const cv::Mat& luma);
// Shannon entropy of the 256-bin histogram of an 8-bit image, in bits: 0 (flat) .. 8.
double Entropy(const cv::Mat& luma);
// Mean absolute difference of two 8-bit images of the same size, 0..255; -1 when sizes differ.
double MeanAbsDiff(const cv::Mat& a, const cv::Mat& b);
// MeanAbsDiff weighted towards the centre: the mean of the whole-image difference and the
// difference of the central half (faces tend to be central). -1 when sizes differ.
double CentreWeightedDiff(const cv::Mat& a, const cv::Mat& b);
// Half the L1 distance between the normalised 32-bin histograms of two 8-bit images: 0 for the
// same distribution, 1 for disjoint ones. Sizes may differ. Insensitive to motion, high at cuts.
double HistogramDistance(const cv::Mat& a, const cv::Mat& b);

// A scene cut between two luma images of one video (probes or thumbnails): the pixels change a
// lot (mean absolute difference above 30) and so does the histogram (distance above 0.35), where
// motion moves pixels but keeps the histogram.
bool LooksLikeCut(const cv::Mat& a, const cv::Mat& b);

// 64-bit difference hash: the image averaged over a 9x8 grid of boxes, bit 8*row+col set when a box is
// brighter than its right neighbour. Frames that look alike have hashes a few bits apart.
uint64_t DHash(const cv::Mat& luma);
// DHash of a frame's thumbnail (reads the frame with a temporary LumaReader). Errors: those of
// LumaReader.
Result<uint64_t> DHash(const FrameRef& frame);
// Number of differing bits.
int HammingDistance(uint64_t a, uint64_t b);

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_FRAME_STATS_H_
