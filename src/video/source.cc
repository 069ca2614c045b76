#include "video/source.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <queue>

#include <opencv2/core.hpp>

#include "video/ffmpeg_handles.h"
#include "video/hwaccel.h"
#include "video/nal.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libswscale/swscale.h>
}

namespace deepscan::video {
namespace {

using Clock = std::chrono::steady_clock;

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

bool IsUrl(const std::string& s) { return s.find("://") != std::string::npos; }

// Clockwise rotation (0/90/180/270) that makes frames of `st` upright, from its display matrix.
int StreamRotation(const AVStream* st) {
  const uint8_t* matrix = nullptr;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
  const AVPacketSideData* sd = av_packet_side_data_get(st->codecpar->coded_side_data, st->codecpar->nb_coded_side_data,
                                                       AV_PKT_DATA_DISPLAYMATRIX);
  if (sd) matrix = sd->data;
#else
  matrix = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, nullptr);
#endif
  if (!matrix) return 0;
  // av_display_rotation_get gives the counter-clockwise angle the matrix applies.
  double theta = -av_display_rotation_get(reinterpret_cast<const int32_t*>(matrix));
  if (std::isnan(theta)) return 0;
  theta -= 360 * std::floor(theta / 360 + 0.9 / 360);
  int r = static_cast<int>(std::lround(theta / 90.0)) * 90 % 360;
  return r < 0 ? r + 360 : r;
}

}  // namespace

// ---- FrameRef -------------------------------------------------------------------------------
FrameRef::FrameRef(AVFrame* frame, int64_t index, double timestamp_s, bool keyframe)
    : frame_(frame), index_(index), timestamp_s_(timestamp_s), keyframe_(keyframe) {}
FrameRef::FrameRef(FrameRef&& o) noexcept { *this = std::move(o); }
FrameRef& FrameRef::operator=(FrameRef&& o) noexcept {
  if (this != &o) {
    if (frame_) av_frame_free(&frame_);
    frame_ = o.frame_;
    index_ = o.index_;
    timestamp_s_ = o.timestamp_s_;
    keyframe_ = o.keyframe_;
    o.frame_ = nullptr;
  }
  return *this;
}
FrameRef::~FrameRef() {
  if (frame_) av_frame_free(&frame_);
}
bool FrameRef::on_gpu() const { return IsHardwareFrame(frame_); }

// ---- Source ---------------------------------------------------------------------------------
struct Source::Impl {
  SourceOptions options;
  Clock::time_point deadline = Clock::time_point::max();
  std::unique_ptr<AVFormatContext, FormatCloser> fmt;
  std::unique_ptr<AVCodecContext, CodecFreer> codec;
  std::unique_ptr<AVPacket, PacketFreer> packet{av_packet_alloc()};
  std::unique_ptr<AVFrame, FrameFreer> frame{av_frame_alloc()};
  std::unique_ptr<SwsContext, SwsFreer> sws;
  int stream_index = -1;
  AVRational time_base{1, 1};
  StreamInfo info;
  std::vector<std::string> warnings;
  int64_t decoded = 0;
  int64_t bad_packets = 0;
  int64_t last_pts = AV_NOPTS_VALUE;
  bool draining = false;
  bool finished = false;
  // Non-reference frame skipping (skip_nonref + a filter): codec framing, and the timestamps of
  // skipped frames not yet passed in output order (to keep frame indices exact).
  FrameFilter filter;
  std::optional<NalCodec> nal_codec;
  int nal_length_size = -1;
  int64_t skipped = 0;
  int64_t skipped_before = 0;  // skipped frames earlier (in output order) than the last output
  std::priority_queue<int64_t, std::vector<int64_t>, std::greater<>> skipped_pts;

  // True when this packet is a non-reference picture that the filter rejects.
  bool Skippable(const AVPacket* p) const {
    if (!filter || !nal_codec || nal_length_size < 0 || p->pts == AV_NOPTS_VALUE) return false;
    if (!IsNonReferencePacket(*nal_codec, p->data, static_cast<size_t>(p->size), nal_length_size)) return false;
    return !filter(Seconds(p->pts));
  }
  // Hardware decoding (video/hwaccel.h): NVDEC attached at open; a software frame seen since.
  bool nvdec = false;
  bool software_frames = false;
  std::unique_ptr<AVFrame, FrameFreer> downloaded{av_frame_alloc()};  // ToBgr's copy of a GPU frame

  bool TimedOut() const { return Clock::now() > deadline; }
  static int Interrupt(void* opaque) { return static_cast<Impl*>(opaque)->TimedOut() ? 1 : 0; }
  void Warn(std::string w) {
    if (std::find(warnings.begin(), warnings.end(), w) == warnings.end()) warnings.push_back(std::move(w));
  }
  double Seconds(int64_t ts) const { return ts == AV_NOPTS_VALUE ? 0.0 : ts * av_q2d(time_base); }
  // A frame in system memory although NVDEC was attached: FFmpeg decoded this stream in software.
  void SawSoftwareFrame() {
    if (nvdec && !software_frames && options.hwaccel == "cuda") {
      Warn("NVDEC did not take this stream (codec profile or size?); decoded on the CPU");
    }
    software_frames = true;
  }
};

Source::Source(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Source::~Source() = default;
const StreamInfo& Source::info() const { return impl_->info; }
const std::vector<std::string>& Source::warnings() const { return impl_->warnings; }
int64_t Source::frames_decoded() const { return impl_->decoded; }
int64_t Source::frames_skipped() const { return impl_->skipped; }

void Source::SetFrameFilter(FrameFilter filter) {
  Impl& s = *impl_;
  s.filter = std::move(filter);
  if (!s.options.skip_nonref || s.options.keyframes_only) return;
  const AVCodecParameters* par = s.fmt->streams[s.stream_index]->codecpar;
  if (par->codec_id == AV_CODEC_ID_H264) s.nal_codec = NalCodec::kH264;
  if (par->codec_id == AV_CODEC_ID_HEVC) s.nal_codec = NalCodec::kHevc;
  if (s.nal_codec) {
    s.nal_length_size = NalLengthSize(*s.nal_codec, par->extradata, static_cast<size_t>(par->extradata_size));
  }
}

Result<std::unique_ptr<Source>> Source::Open(const std::string& url, const SourceOptions& options) {
  InitFfmpegLogging();
  if (!IsUrl(url)) {
    std::error_code ec;
    if (!std::filesystem::exists(url, ec)) return Status::NotFound("no such file: " + url);
    if (std::filesystem::is_directory(url, ec)) return Status::NotAVideo(url + " is a directory");
    if (std::filesystem::file_size(url, ec) == 0 && !ec) return Status::CorruptInput("empty file (0 bytes): " + url);
  }
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  if (options.timeout_s > 0) {
    impl->deadline = Clock::now() + std::chrono::microseconds(static_cast<int64_t>(options.timeout_s * 1e6));
  }

  AVFormatContext* raw = avformat_alloc_context();
  raw->interrupt_callback.callback = &Impl::Interrupt;
  raw->interrupt_callback.opaque = impl.get();
  AVDictionary* opts = nullptr;
  if (IsUrl(url) && options.timeout_s > 0) {
    av_dict_set_int(&opts, "rw_timeout", static_cast<int64_t>(options.timeout_s * 1e6), 0);
  }
  int err = avformat_open_input(&raw, url.c_str(), nullptr, &opts);
  av_dict_free(&opts);
  if (err < 0) {  // avformat_open_input frees `raw` on failure
    if (impl->TimedOut()) return Status::Timeout("timed out opening " + url);
    if (err == AVERROR(ENOENT) || err == AVERROR_HTTP_NOT_FOUND)
      return Status::NotFound("cannot open " + url + ": " + AvError(err));
    return Status::CorruptInput("not a readable media file (" + AvError(err) + "): " + url);
  }
  impl->fmt.reset(raw);
  err = avformat_find_stream_info(raw, nullptr);
  if (err < 0) {
    if (impl->TimedOut()) return Status::Timeout("timed out probing " + url);
    return Status::CorruptInput("cannot read stream information (" + AvError(err) + "): " + url);
  }

  std::string container = raw->iformat->name ? raw->iformat->name : "";
  const AVCodec* decoder = nullptr;
  int idx = av_find_best_stream(raw, AVMEDIA_TYPE_VIDEO, -1, -1, &decoder, 0);
  if (idx == AVERROR_STREAM_NOT_FOUND) {
    bool has_audio = av_find_best_stream(raw, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0) >= 0;
    return Status::NotAVideo(std::string("no video stream") + (has_audio ? " (audio only)" : "") + ": " + url);
  }
  if (idx < 0 || decoder == nullptr) {
    return Status::CorruptInput("no decoder for the video stream (" + AvError(idx) + "): " + url);
  }
  AVStream* st = raw->streams[idx];
  // Still images open as one-frame "videos" through the image demuxers; refuse them clearly.
  bool still = container == "image2" || container.ends_with("_pipe") || (st->disposition & AV_DISPOSITION_ATTACHED_PIC);
  if (still) {
    return Status::NotAVideo("a still image, not a video (" + container + "): " + url);
  }
  const AVCodecParameters* par = st->codecpar;
  if (par->width <= 0 || par->height <= 0) {
    return Status::CorruptInput("video stream has no frame size: " + url);
  }
  if (static_cast<int64_t>(par->width) * par->height > options.max_pixels) {
    return Status::TooLarge("frame size " + std::to_string(par->width) + "x" + std::to_string(par->height) +
                            " exceeds the limit of " + std::to_string(options.max_pixels) + " pixels: " + url);
  }

  AVCodecContext* cc = avcodec_alloc_context3(decoder);
  impl->codec.reset(cc);
  if ((err = avcodec_parameters_to_context(cc, par)) < 0) {
    return Status::CorruptInput("bad codec parameters (" + AvError(err) + "): " + url);
  }
  cc->thread_count = options.threads;  // 0 = auto
  cc->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  if (options.keyframes_only) cc->skip_frame = AVDISCARD_NONKEY;
  // Hardware decoding, when asked for; any reason it cannot be used leaves software decoding.
  if (options.hwaccel == "cuda" || options.hwaccel == "auto") {
    Status hw = AttachCudaDecoder(cc);
    impl->nvdec = hw.ok();
    if (!hw.ok() && options.hwaccel == "cuda") impl->Warn("NVDEC not used, decoding on the CPU: " + hw.message());
  } else if (options.hwaccel != "none") {
    return Status::InvalidArgument("unknown hwaccel '" + options.hwaccel + "' (none, cuda or auto)");
  }
  if ((err = avcodec_open2(cc, decoder, nullptr)) < 0) {
    return Status::CorruptInput("cannot open the " + std::string(decoder->name) + " decoder (" + AvError(err) +
                                "): " + url);
  }
  // Tell the demuxer to drop packets of other streams early.
  for (unsigned i = 0; i < raw->nb_streams; ++i) {
    if (static_cast<int>(i) != idx) raw->streams[i]->discard = AVDISCARD_ALL;
  }

  impl->stream_index = idx;
  impl->time_base = st->time_base;
  StreamInfo& info = impl->info;
  info.rotation = StreamRotation(st);
  bool swap = info.rotation == 90 || info.rotation == 270;
  info.width = swap ? par->height : par->width;
  info.height = swap ? par->width : par->height;
  AVRational fr = st->avg_frame_rate.num > 0 ? st->avg_frame_rate : st->r_frame_rate;
  info.fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 0;
  info.start_s = st->start_time != AV_NOPTS_VALUE ? st->start_time * av_q2d(st->time_base) : 0;
  if (st->duration != AV_NOPTS_VALUE && st->duration > 0) {
    info.duration_s = st->duration * av_q2d(st->time_base);
  } else if (raw->duration != AV_NOPTS_VALUE && raw->duration > 0) {
    info.duration_s = static_cast<double>(raw->duration) / AV_TIME_BASE;
  }
  info.frame_count = st->nb_frames;
  if (info.frame_count <= 0 && info.duration_s > 0 && info.fps > 0) {
    info.frame_count = static_cast<int64_t>(std::llround(info.duration_s * info.fps));
  }
  info.codec = decoder->name;
  info.container = container;
  return std::unique_ptr<Source>(new Source(std::move(impl)));
}

Result<bool> Source::Next(FrameRef* out) {
  Impl& s = *impl_;
  AVCodecContext* cc = s.codec.get();
  while (!s.finished) {
    if (s.TimedOut()) return Status::Timeout("decoding took longer than the time budget");
    int err = avcodec_receive_frame(cc, s.frame.get());
    if (err == 0) {
      AVFrame* f = s.frame.get();
      int64_t pts = f->best_effort_timestamp;
      if (pts == AV_NOPTS_VALUE) pts = f->pts;
      if (pts == AV_NOPTS_VALUE && s.last_pts != AV_NOPTS_VALUE) pts = s.last_pts + 1;
      if (pts != AV_NOPTS_VALUE) s.last_pts = pts;
      AVFrame* ref = av_frame_alloc();
      av_frame_move_ref(ref, f);
      bool key = ref->key_frame != 0 || ref->pict_type == AV_PICTURE_TYPE_I;
      // The frame number: counted when every frame is decoded; when the decoder skips non-key
      // frames, estimated from the timestamp and the average frame rate.
      while (pts != AV_NOPTS_VALUE && !s.skipped_pts.empty() && s.skipped_pts.top() < pts) {
        s.skipped_pts.pop();
        ++s.skipped_before;
      }
      int64_t index = s.decoded++ + s.skipped_before;
      if (s.options.keyframes_only && s.info.fps > 0) {
        index = std::llround((s.Seconds(pts) - s.info.start_s) * s.info.fps);
      }
      *out = FrameRef(ref, index, s.Seconds(pts), key);
      return true;
    }
    if (err == AVERROR_EOF) {
      s.finished = true;
      break;
    }
    if (err != AVERROR(EAGAIN)) {
      s.Warn("decoder error: " + AvError(err));
      s.finished = true;
      break;
    }
    // The decoder wants input.
    if (s.draining) {
      s.finished = true;
      break;
    }
    err = av_read_frame(s.fmt.get(), s.packet.get());
    if (err < 0) {
      if (s.TimedOut()) return Status::Timeout("reading took longer than the time budget");
      if (err != AVERROR_EOF) s.Warn("read error, stream cut short: " + AvError(err));
      s.draining = true;
      avcodec_send_packet(cc, nullptr);  // flush
      continue;
    }
    if (s.packet->stream_index == s.stream_index && s.Skippable(s.packet.get())) {
      ++s.skipped;
      s.skipped_pts.push(s.packet->pts);
    } else if (s.packet->stream_index == s.stream_index) {
      err = avcodec_send_packet(cc, s.packet.get());
      if (err < 0 && err != AVERROR(EAGAIN)) {
        ++s.bad_packets;
        s.Warn("corrupt packets skipped");
      }
    }
    av_packet_unref(s.packet.get());
  }
  if (s.decoded == 0) return Status::CorruptInput("no decodable video frame in the stream");
  // Truncation: the container promised more than the stream held.
  double end = s.Seconds(s.last_pts);
  if (s.info.duration_s > 2.0 && end + 1.0 < s.info.start_s + s.info.duration_s * 0.9 && !s.options.keyframes_only) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "truncated: decoded up to %.1f s of the %.1f s the container declares", end,
                  s.info.duration_s);
    s.Warn(buf);
  }
  return false;
}

const char* Source::decoder_device() const { return impl_->nvdec && !impl_->software_frames ? "cuda" : "cpu"; }

Status Source::Download(FrameRef* frame) {
  if (!frame->valid()) return Status::Internal("Download on an empty FrameRef");
  if (!frame->on_gpu()) {
    impl_->SawSoftwareFrame();
    return Status::Ok();
  }
  std::unique_ptr<AVFrame, FrameFreer> copy(av_frame_alloc());
  RETURN_IF_ERROR(DownloadFrame(frame->frame_, copy.get()));
  av_frame_free(&frame->frame_);
  frame->frame_ = copy.release();
  return Status::Ok();
}

Status Source::ToBgr(const FrameRef& ref, cv::Mat* bgr) {
  Impl& s = *impl_;
  const AVFrame* f = ref.av();
  if (!f) return Status::Internal("ToBgr on an empty FrameRef");
  if (ref.on_gpu()) {
    RETURN_IF_ERROR(DownloadFrame(f, s.downloaded.get()));
    f = s.downloaded.get();
  } else {
    s.SawSoftwareFrame();
  }
  int w = f->width, h = f->height;
  if (static_cast<int64_t>(w) * h > s.options.max_pixels) return Status::TooLarge("decoded frame too large");
  s.sws.reset(sws_getCachedContext(s.sws.release(), w, h, static_cast<AVPixelFormat>(f->format), w, h, AV_PIX_FMT_BGR24,
                                   SWS_BILINEAR, nullptr, nullptr, nullptr));
  if (!s.sws) return Status::CorruptInput("unsupported pixel format in the decoded frame");
  cv::Mat upright_src = SwsBgrTarget(w, h);
  uint8_t* dst[4] = {upright_src.data, nullptr, nullptr, nullptr};
  int dst_stride[4] = {static_cast<int>(upright_src.step[0]), 0, 0, 0};
  sws_scale(s.sws.get(), f->data, f->linesize, 0, h, dst, dst_stride);
  switch (s.info.rotation) {
    case 90: cv::rotate(upright_src, *bgr, cv::ROTATE_90_CLOCKWISE); break;
    case 180: cv::rotate(upright_src, *bgr, cv::ROTATE_180); break;
    case 270: cv::rotate(upright_src, *bgr, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: *bgr = upright_src; break;
  }
  return Status::Ok();
}

}  // namespace deepscan::video
