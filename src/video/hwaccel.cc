#include "video/hwaccel.h"

#include <string>

#include "core/cuda_probe.h"

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavutil/buffer.h>
#include <libavutil/error.h>
#include <libavutil/frame.h>
#include <libavutil/hwcontext.h>
#include <libavutil/pixdesc.h>
}

namespace deepscan::video {
namespace {

std::string AvError(int err) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(err, buf, sizeof(buf));
  return buf;
}

// FFmpeg offers the formats it can decode this stream to, best first; a hardware one only when
// the hwaccel can take the stream (codec, profile, size). CUDA when offered, else the first
// software format (after a failed hwaccel start FFmpeg asks again without CUDA).
AVPixelFormat PickCuda(AVCodecContext* /*cc*/, const AVPixelFormat* formats) {
  for (const AVPixelFormat* p = formats; *p != AV_PIX_FMT_NONE; ++p) {
    if (*p == AV_PIX_FMT_CUDA) return *p;
  }
  for (const AVPixelFormat* p = formats; *p != AV_PIX_FMT_NONE; ++p) {
    const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(*p);
    if (desc && !(desc->flags & AV_PIX_FMT_FLAG_HWACCEL)) return *p;
  }
  return AV_PIX_FMT_NONE;
}

bool DecoderHasCudaPath(const AVCodec* codec) {
  for (int i = 0;; ++i) {
    const AVCodecHWConfig* config = avcodec_get_hw_config(codec, i);
    if (!config) return false;
    if ((config->methods & AV_CODEC_HW_CONFIG_METHOD_HW_DEVICE_CTX) && config->device_type == AV_HWDEVICE_TYPE_CUDA &&
        config->pix_fmt == AV_PIX_FMT_CUDA) {
      return true;
    }
  }
}

}  // namespace

Status AttachCudaDecoder(AVCodecContext* cc, int device_id) {
  const AVCodec* codec = cc->codec;
  if (!codec) codec = avcodec_find_decoder(cc->codec_id);
  const char* name = codec ? codec->name : "unknown";
  if (!codec || !DecoderHasCudaPath(codec)) {
    return Status::NotSupported(std::string("the ") + name + " decoder has no NVDEC (cuda) path in this FFmpeg build");
  }
  const CudaProbe& probe = ProbeCuda();
  if (probe.devices == 0) return Status::NotSupported(probe.problem);
  if (device_id < 0 || device_id >= probe.devices) {
    return Status::NotSupported("no CUDA device " + std::to_string(device_id));
  }
  AVBufferRef* device = nullptr;
  const std::string ordinal = std::to_string(device_id);
  int err = av_hwdevice_ctx_create(&device, AV_HWDEVICE_TYPE_CUDA, ordinal.c_str(), nullptr, 0);
  if (err < 0) {
    return Status::NotSupported("cannot open CUDA device " + ordinal + " for NVDEC (" + AvError(err) +
                                "; FFmpeg needs libcuda.so.1 and libnvcuvid.so.1)");
  }
  cc->hw_device_ctx = device;  // the context owns the reference now
  cc->get_format = &PickCuda;
  cc->thread_count = 1;
  return Status::Ok();
}

bool IsHardwareFrame(const AVFrame* frame) { return frame != nullptr && frame->hw_frames_ctx != nullptr; }

Status DownloadFrame(const AVFrame* hw, AVFrame* sw) {
  av_frame_unref(sw);
  sw->format = AV_PIX_FMT_NONE;  // the device's preferred download format (NV12, P010...)
  int err = av_hwframe_transfer_data(sw, hw, 0);
  if (err >= 0) err = av_frame_copy_props(sw, hw);
  if (err < 0) {
    av_frame_unref(sw);
    return Status::Internal("cannot copy a decoded frame from the GPU: " + AvError(err));
  }
  return Status::Ok();
}

}  // namespace deepscan::video
