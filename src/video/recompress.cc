#include "video/recompress.h"

#include <memory>

#include <opencv2/core.hpp>

#include "video/ffmpeg_handles.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

namespace deepscan::video {
namespace {

using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;

// Converts between a BGR cv::Mat and a frame of `fmt` with swscale.
bool Convert(const uint8_t* const src[], const int src_stride[], AVPixelFormat src_fmt, uint8_t* const dst[],
             const int dst_stride[], AVPixelFormat dst_fmt, int w, int h) {
  std::unique_ptr<SwsContext, SwsFreer> sws(
      sws_getContext(w, h, src_fmt, w, h, dst_fmt, SWS_BILINEAR, nullptr, nullptr, nullptr));
  if (!sws) return false;
  sws_scale(sws.get(), src, src_stride, 0, h, dst, dst_stride);
  return true;
}

}  // namespace

Result<cv::Mat> H264RoundTrip(const cv::Mat& bgr, int crf) {
  if (bgr.empty() || bgr.type() != CV_8UC3) return Status::InvalidArgument("H264RoundTrip needs a BGR image");
  if (crf < 0 || crf > 51) return Status::InvalidArgument("crf must be in 0..51");
  InitFfmpegLogging();
  // 4:2:0 needs even sides: pad by replication, crop back at the end.
  const int w = bgr.cols + (bgr.cols & 1), h = bgr.rows + (bgr.rows & 1);
  cv::Mat src;
  cv::copyMakeBorder(bgr, src, 0, h - bgr.rows, 0, w - bgr.cols, cv::BORDER_REPLICATE);

  const AVCodec* enc_codec = avcodec_find_encoder_by_name("libx264");
  if (!enc_codec) enc_codec = avcodec_find_encoder(AV_CODEC_ID_H264);
  const AVCodec* dec_codec = avcodec_find_decoder(AV_CODEC_ID_H264);
  if (!enc_codec || !dec_codec) return Status::NotSupported("no H.264 encoder/decoder in this FFmpeg build");
  CodecPtr enc(avcodec_alloc_context3(enc_codec));
  enc->width = w;
  enc->height = h;
  enc->pix_fmt = AV_PIX_FMT_YUV420P;
  enc->time_base = {1, 25};
  enc->gop_size = 1;
  enc->max_b_frames = 0;
  enc->thread_count = 1;
  av_opt_set(enc->priv_data, "preset", "ultrafast", 0);
  av_opt_set(enc->priv_data, "tune", "zerolatency", 0);
  av_opt_set_int(enc->priv_data, "crf", crf, 0);
  if (avcodec_open2(enc.get(), enc_codec, nullptr) < 0) return Status::Internal("cannot open the H.264 encoder");

  FramePtr yuv(av_frame_alloc());
  yuv->format = AV_PIX_FMT_YUV420P;
  yuv->width = w;
  yuv->height = h;
  yuv->pts = 0;
  if (av_frame_get_buffer(yuv.get(), 0) < 0) return Status::Internal("cannot allocate a frame");
  const uint8_t* in_planes[4] = {src.data, nullptr, nullptr, nullptr};
  const int in_strides[4] = {static_cast<int>(src.step[0]), 0, 0, 0};
  if (!Convert(in_planes, in_strides, AV_PIX_FMT_BGR24, yuv->data, yuv->linesize, AV_PIX_FMT_YUV420P, w, h)) {
    return Status::Internal("colour conversion failed");
  }

  CodecPtr dec(avcodec_alloc_context3(dec_codec));
  dec->thread_count = 1;
  if (avcodec_open2(dec.get(), dec_codec, nullptr) < 0) return Status::Internal("cannot open the H.264 decoder");
  std::unique_ptr<AVPacket, PacketFreer> pkt(av_packet_alloc());
  FramePtr out(av_frame_alloc()), next(av_frame_alloc());
  bool got = false;
  avcodec_send_frame(enc.get(), yuv.get());
  avcodec_send_frame(enc.get(), nullptr);  // flush: one frame in, its packet out
  while (avcodec_receive_packet(enc.get(), pkt.get()) == 0) {
    avcodec_send_packet(dec.get(), pkt.get());
    av_packet_unref(pkt.get());
  }
  avcodec_send_packet(dec.get(), nullptr);
  // avcodec_receive_frame unrefs its frame even when it fails: receive into `next`, keep in `out`.
  while (avcodec_receive_frame(dec.get(), next.get()) == 0) {
    av_frame_unref(out.get());
    av_frame_move_ref(out.get(), next.get());
    got = true;
  }
  if (!got) return Status::Internal("the H.264 round trip produced no frame");

  cv::Mat dst = SwsBgrTarget(w, h);
  uint8_t* out_planes[4] = {dst.data, nullptr, nullptr, nullptr};
  const int out_strides[4] = {static_cast<int>(dst.step[0]), 0, 0, 0};
  if (!Convert(out->data, out->linesize, static_cast<AVPixelFormat>(out->format), out_planes, out_strides,
               AV_PIX_FMT_BGR24, w, h)) {
    return Status::Internal("colour conversion failed");
  }
  return dst(cv::Rect(0, 0, bgr.cols, bgr.rows)).clone();
}

}  // namespace deepscan::video
