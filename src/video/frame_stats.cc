#include "video/frame_stats.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include <opencv2/imgproc.hpp>

#include "video/ffmpeg_handles.h"

extern "C" {
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>
}

namespace deepscan::video {
namespace {

// A `width` x `height` CV_8UC1 image swscale may write into: padded rows and a spare row, as in
// SwsBgrTarget (its SIMD paths may write a vector past the end).
cv::Mat SwsGrayTarget(int width, int height) {
  const size_t stride = (static_cast<size_t>(width) + 63) / 64 * 64 + 64;
  cv::Mat storage(height + 1, static_cast<int>(stride), CV_8UC1);
  return storage(cv::Rect(0, 0, width, height));
}

// Full-range formats whose frames may not say so in color_range.
bool FullRange(const AVFrame* f, const AVPixFmtDescriptor* desc) {
  if (f->color_range == AVCOL_RANGE_JPEG) return true;
  if (desc->nb_components <= 2 || (desc->flags & AV_PIX_FMT_FLAG_RGB)) return true;  // grey, grey+alpha, RGB
  switch (f->format) {
    case AV_PIX_FMT_YUVJ420P:
    case AV_PIX_FMT_YUVJ422P:
    case AV_PIX_FMT_YUVJ444P:
    case AV_PIX_FMT_YUVJ440P:
    case AV_PIX_FMT_YUVJ411P: return true;
    default: return false;
  }
}

// 256-bin histogram of an 8-bit image, as counts.
cv::Mat Histogram(const cv::Mat& luma, int bins) {
  cv::Mat hist;
  const int channel = 0;
  const float range[] = {0, 256};
  const float* ranges = range;
  cv::calcHist(&luma, 1, &channel, cv::Mat(), hist, 1, &bins, &ranges);
  return hist;
}

Exposure ExposureFromHistogram(const cv::Mat& hist) {
  Exposure e;
  double n = 0, sum = 0, dark = 0, bright = 0;
  for (int i = 0; i < 256; ++i) {
    const double c = hist.at<float>(i);
    n += c;
    sum += c * i;
    if (i < 16) dark += c;
    if (i > 235) bright += c;
  }
  if (n <= 0) return e;
  e.mean = sum / n;
  e.dark_fraction = dark / n;
  e.bright_fraction = bright / n;
  return e;
}

double EntropyFromHistogram(const cv::Mat& hist) {
  const double n = cv::sum(hist)[0];
  if (n <= 0) return 0;
  double h = 0;
  for (int i = 0; i < hist.rows; ++i) {
    const double p = hist.at<float>(i) / n;
    if (p > 0) h -= p * std::log2(p);
  }
  return h;
}

cv::Rect CentreRect(int width, int height) {
  return {width / 4, height / 4, std::max(1, width / 2), std::max(1, height / 2)};
}

}  // namespace

struct LumaReader::Impl {
  const AVFrame* frame = nullptr;                 // the loaded software frame
  std::unique_ptr<AVFrame, FrameFreer> download;  // hardware frames are downloaded into this
  bool in_place = false;                          // the luma is read from the frame's first plane
  cv::Mat plane;                                  // that plane: CV_8UC1, CV_16UC1 or CV_8UC(step) (packed)
  double to_8bit = 1.0;                           // CV_16UC1: scale from plane values to 8 bits
  cv::Mat weights;                                // packed: 1 x step weights of the channels in the luma
  bool full_range = false;
  struct Scaler {
    std::unique_ptr<SwsContext, SwsFreer> ctx;
    const void* configured = nullptr;  // ctx once its ranges were set
    bool configured_full_range = false;
  };
  Scaler sws_thumb, sws_centre, sws_probe;

  // 8-bit luma of (part of) the plane: the same image for 8-bit luma planes, else a new one.
  cv::Mat ToLuma(const cv::Mat& m) const {
    cv::Mat out;
    if (m.channels() > 1) {
      cv::transform(m, out, weights);
    } else if (m.depth() != CV_8U) {
      m.convertTo(out, CV_8U, to_8bit);
    } else {
      out = m;
    }
    return out;
  }

  // The whole frame as GRAY8 (full range) at `width` x `height`, through swscale.
  Status Scale(Scaler* scaler, int width, int height, int flags, cv::Mat* out) {
    const AVFrame* f = frame;
    std::unique_ptr<SwsContext, SwsFreer>& ctx = scaler->ctx;
    ctx.reset(sws_getCachedContext(ctx.release(), f->width, f->height, static_cast<AVPixelFormat>(f->format), width,
                                   height, AV_PIX_FMT_GRAY8, flags, nullptr, nullptr, nullptr));
    if (!ctx) return Status::CorruptInput("unsupported pixel format in the decoded frame");
    if (scaler->configured != ctx.get() || scaler->configured_full_range != full_range) {
      const int* coefficients = sws_getCoefficients(SWS_CS_DEFAULT);
      sws_setColorspaceDetails(ctx.get(), coefficients, full_range ? 1 : 0, coefficients, 1, 0, 1 << 16, 1 << 16);
      scaler->configured = ctx.get();
      scaler->configured_full_range = full_range;
    }
    cv::Mat target = SwsGrayTarget(width, height);
    uint8_t* dst[4] = {target.data, nullptr, nullptr, nullptr};
    int dst_stride[4] = {static_cast<int>(target.step[0]), 0, 0, 0};
    sws_scale(ctx.get(), f->data, f->linesize, 0, f->height, dst, dst_stride);
    *out = target;
    return Status::Ok();
  }
};

LumaReader::LumaReader() : impl_(std::make_unique<Impl>()) {}
LumaReader::~LumaReader() = default;

Status LumaReader::Load(const AVFrame* frame) {
  Impl& s = *impl_;
  s.frame = nullptr;
  if (!frame || frame->width <= 0 || frame->height <= 0) return Status::CorruptInput("empty decoded frame");
  if (frame->hw_frames_ctx) {
    if (!s.download) s.download.reset(av_frame_alloc());
    av_frame_unref(s.download.get());
    if (!s.download || av_hwframe_transfer_data(s.download.get(), frame, 0) < 0) {
      return Status::Internal("could not download a hardware frame");
    }
    av_frame_copy_props(s.download.get(), frame);
    frame = s.download.get();
  }
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(static_cast<AVPixelFormat>(frame->format));
  if (!desc || !frame->data[0]) return Status::CorruptInput("unsupported pixel format in the decoded frame");
  s.frame = frame;
  s.full_range = FullRange(frame, desc);
  s.plane.release();
  s.in_place = false;
  const uint64_t not_in_place = AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_HWACCEL |
                                AV_PIX_FMT_FLAG_FLOAT | AV_PIX_FMT_FLAG_BE;
  if ((desc->flags & not_in_place) || frame->linesize[0] <= 0) return Status::Ok();
  const AVComponentDescriptor& y = desc->comp[0];
  const bool rgb = desc->flags & AV_PIX_FMT_FLAG_RGB;
  if (!rgb && y.plane == 0 && y.offset == 0 && y.step == 1 && y.depth == 8 && y.shift == 0) {
    // Planar or semi-planar 8-bit YUV, grey: the luma plane itself.
    s.plane = cv::Mat(frame->height, frame->width, CV_8UC1, frame->data[0], frame->linesize[0]);
    s.in_place = true;
  } else if (!rgb && y.plane == 0 && y.offset == 0 && y.step == 2 && y.depth > 8 && y.depth <= 16) {
    // The same with 9..16-bit little-endian samples (P010 keeps them in the high bits).
    s.plane = cv::Mat(frame->height, frame->width, CV_16UC1, frame->data[0], frame->linesize[0]);
    s.to_8bit = 1.0 / static_cast<double>(1 << (y.depth + y.shift - 8));
    s.in_place = true;
  } else if (y.step >= 2 && y.step <= 4) {
    // Packed 8-bit pixels (RGB24, BGRA, YUYV...): each pixel is `step` bytes of plane 0; the luma
    // is one of them (YUV) or a weighted sum of three (RGB, BT.601).
    const int comps = rgb ? 3 : 1;
    for (int c = 0; c < comps; ++c) {
      const AVComponentDescriptor& d = desc->comp[c];
      if (d.plane != 0 || d.step != y.step || d.depth != 8 || d.shift != 0 || d.offset >= y.step) return Status::Ok();
    }
    s.weights = cv::Mat::zeros(1, y.step, CV_32F);
    if (rgb) {
      s.weights.at<float>(desc->comp[0].offset) = 0.299f;
      s.weights.at<float>(desc->comp[1].offset) = 0.587f;
      s.weights.at<float>(desc->comp[2].offset) = 0.114f;
    } else {
      s.weights.at<float>(y.offset) = 1.0f;
    }
    s.plane = cv::Mat(frame->height, frame->width, CV_8UC(y.step), frame->data[0], frame->linesize[0]);
    s.in_place = true;
  }
  return Status::Ok();
}

Status LumaReader::Thumbnail(cv::Mat* thumb) {
  Impl& s = *impl_;
  if (!s.frame) return Status::Internal("LumaReader: no frame loaded");
  const int w = s.frame->width, h = s.frame->height;
  const int tw = std::min(kThumbnailWidth, w);
  const int th = std::max(1, static_cast<int>(std::lround(static_cast<double>(h) * tw / w)));
  cv::Mat out;
  if (!s.in_place) {
    RETURN_IF_ERROR(s.Scale(&s.sws_thumb, tw, th, SWS_AREA, &out));
    *thumb = out;
    return Status::Ok();
  }
  if (w >= 4 * tw && h >= 4 * th) {
    // Every k-th pixel down to 4x the size, then two exact 2x area halvings (OpenCV's fast path).
    cv::Mat sampled, half;
    cv::resize(s.plane, sampled, cv::Size(4 * tw, 4 * th), 0, 0, cv::INTER_NEAREST);
    cv::resize(s.ToLuma(sampled), half, cv::Size(2 * tw, 2 * th), 0, 0, cv::INTER_AREA);
    cv::resize(half, out, cv::Size(tw, th), 0, 0, cv::INTER_AREA);
  } else {
    cv::Mat small;
    cv::resize(s.plane, small, cv::Size(tw, th), 0, 0, cv::INTER_AREA);
    out = s.ToLuma(small);
  }
  if (!s.full_range) {
    // Limited-range luma (16..235) stretched to full range.
    static const cv::Mat stretch = [] {
      cv::Mat lut(1, 256, CV_8UC1);
      for (int i = 0; i < 256; ++i) lut.at<uint8_t>(i) = cv::saturate_cast<uint8_t>((i - 16) * 255.0 / 219.0);
      return lut;
    }();
    cv::LUT(out, stretch, out);
  }
  *thumb = out;
  return Status::Ok();
}

Status LumaReader::Centre(int max_width, cv::Mat* centre) {
  Impl& s = *impl_;
  if (!s.frame) return Status::Internal("LumaReader: no frame loaded");
  if (max_width < 1) return Status::InvalidArgument("LumaReader::Centre: max_width must be positive");
  const int w = s.frame->width, h = s.frame->height;
  if (!s.in_place) {
    // The whole frame at twice the wanted centre width, then its middle.
    const int sw = std::min(w, 2 * max_width);
    const int sh = std::max(1, static_cast<int>(std::lround(static_cast<double>(h) * sw / w)));
    cv::Mat gray;
    RETURN_IF_ERROR(s.Scale(&s.sws_centre, sw, sh, SWS_AREA, &gray));
    *centre = gray(CentreRect(sw, sh));
    return Status::Ok();
  }
  const cv::Mat region = s.plane(CentreRect(w, h));
  const int factor = (region.cols + max_width - 1) / max_width;
  if (factor <= 1) {
    *centre = s.ToLuma(region);
    return Status::Ok();
  }
  const int cw = region.cols / factor, ch = std::max(1, region.rows / factor);
  cv::Mat twice;
  if (factor == 2) {
    twice = region(cv::Rect(0, 0, 2 * cw, std::min(region.rows, 2 * ch)));
  } else {
    cv::resize(region, twice, cv::Size(2 * cw, 2 * ch), 0, 0, cv::INTER_NEAREST);
  }
  cv::Mat out;
  cv::resize(twice, out, cv::Size(cw, ch), 0, 0, cv::INTER_AREA);
  *centre = s.ToLuma(out);
  return Status::Ok();
}

Status LumaReader::Probe(int cols, int rows, cv::Mat* probe) {
  Impl& s = *impl_;
  if (!s.frame) return Status::Internal("LumaReader: no frame loaded");
  if (cols < 1 || rows < 1) return Status::InvalidArgument("LumaReader::Probe: empty grid");
  cv::Mat out;
  if (!s.in_place) {
    RETURN_IF_ERROR(s.Scale(&s.sws_probe, cols, rows, SWS_POINT, &out));
  } else {
    cv::resize(s.plane, out, cv::Size(cols, rows), 0, 0, cv::INTER_NEAREST);
    out = s.ToLuma(out);
  }
  *probe = out;
  return Status::Ok();
}

Status MeasureFrame(LumaReader* reader, FrameStats* stats, cv::Mat* thumb) {
  cv::Mat small, centre;
  RETURN_IF_ERROR(reader->Thumbnail(&small));
  RETURN_IF_ERROR(reader->Centre(kCentreWidth, &centre));
  stats->sharpness = Sharpness(centre);
  const cv::Mat hist = Histogram(small, 256);
  stats->exposure = ExposureFromHistogram(hist);
  stats->entropy = EntropyFromHistogram(hist);
  stats->dhash = DHash(small);
  if (thumb) *thumb = small;
  return Status::Ok();
}

double Sharpness(const cv::Mat& luma) {
  if (luma.empty() || luma.rows < 3 || luma.cols < 3) return 0;
  thread_local cv::Mat lap;  // reused: a 1080p centre's Laplacian is 260 KB
  cv::Laplacian(luma, lap, CV_16S);
  const double n = static_cast<double>(lap.total());
  const double mean = cv::sum(lap)[0] / n;
  return lap.dot(lap) / n - mean * mean;
}

Exposure MeasureExposure(const cv::Mat& luma) {
  if (luma.empty()) return {};
  return ExposureFromHistogram(Histogram(luma, 256));
}

double Entropy(const cv::Mat& luma) {
  if (luma.empty()) return 0;
  return EntropyFromHistogram(Histogram(luma, 256));
}

double MeanAbsDiff(const cv::Mat& a, const cv::Mat& b) {
  if (a.empty() || a.size() != b.size() || a.type() != b.type()) return -1;
  return cv::norm(a, b, cv::NORM_L1) / static_cast<double>(a.total() * a.channels());
}

double CentreWeightedDiff(const cv::Mat& a, const cv::Mat& b) {
  const double whole = MeanAbsDiff(a, b);
  if (whole < 0) return whole;
  const cv::Rect c = CentreRect(a.cols, a.rows);
  return 0.5 * (whole + MeanAbsDiff(a(c), b(c)));
}

double HistogramDistance(const cv::Mat& a, const cv::Mat& b) {
  if (a.empty() || b.empty()) return a.empty() == b.empty() ? 0 : 1;
  const cv::Mat ha = Histogram(a, 32), hb = Histogram(b, 32);
  const double na = static_cast<double>(a.total()), nb = static_cast<double>(b.total());
  double d = 0;
  for (int i = 0; i < 32; ++i) d += std::abs(ha.at<float>(i) / na - hb.at<float>(i) / nb);
  return 0.5 * d;
}

uint64_t DHash(const cv::Mat& luma) {
  if (luma.empty()) return 0;
  // Box means of a 9 x 8 grid from the integral image (cv::resize's INTER_AREA to 9 x 8 costs
  // ten times more for the same averages).
  cv::Mat sums;
  cv::integral(luma, sums, CV_32S);
  const int w = luma.cols, h = luma.rows;
  double cell[8][9];
  for (int r = 0; r < 8; ++r) {
    const int y0 = r * h / 8, y1 = std::max(y0 + 1, (r + 1) * h / 8);
    for (int c = 0; c < 9; ++c) {
      const int x0 = c * w / 9, x1 = std::max(x0 + 1, (c + 1) * w / 9);
      const int ya = std::min(y0, h - 1), yb = std::min(y1, h), xa = std::min(x0, w - 1), xb = std::min(x1, w);
      const double sum = sums.at<int>(yb, xb) - sums.at<int>(ya, xb) - sums.at<int>(yb, xa) + sums.at<int>(ya, xa);
      cell[r][c] = sum / ((yb - ya) * (xb - xa));
    }
  }
  uint64_t hash = 0;
  for (int r = 0; r < 8; ++r) {
    for (int c = 0; c < 8; ++c) {
      if (cell[r][c] > cell[r][c + 1]) hash |= uint64_t{1} << (8 * r + c);
    }
  }
  return hash;
}

Result<uint64_t> DHash(const FrameRef& frame) {
  LumaReader reader;
  RETURN_IF_ERROR(reader.Load(frame.av()));
  cv::Mat thumb;
  RETURN_IF_ERROR(reader.Thumbnail(&thumb));
  return DHash(thumb);
}

int HammingDistance(uint64_t a, uint64_t b) { return std::popcount(a ^ b); }

bool LooksLikeCut(const cv::Mat& a, const cv::Mat& b) {
  constexpr double kCutDiff = 30;
  constexpr double kCutHistogram = 0.35;
  return MeanAbsDiff(a, b) > kCutDiff && HistogramDistance(a, b) > kCutHistogram;
}

}  // namespace deepscan::video
