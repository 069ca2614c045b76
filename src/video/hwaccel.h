// video/hwaccel.h: NVIDIA hardware decoding (NVDEC, FFmpeg's "cuda" hwaccel) for video::Source.
//
// In:  an AVCodecContext set up but not yet opened (avcodec_open2 not called).
// Out: AttachCudaDecoder makes the decoder hand out frames in GPU memory (AV_PIX_FMT_CUDA) when
//      NVDEC takes the stream, and ordinary system-memory frames when it does not (FFmpeg asks
//      the get_format callback again without the hardware format, and it picks software).
//      DownloadFrame copies such a GPU frame into system memory (NV12 for 8-bit video), which is
//      what swscale and every pixel reader need: a hardware frame's AVFrame::data holds device
//      pointers and must never be read on the CPU.
// How: av_hwdevice_ctx_create(AV_HWDEVICE_TYPE_CUDA) once per decoder (FFmpeg loads libcuda and
//      libnvcuvid at run time: nothing links CUDA). The device is checked with core/cuda_probe.h
//      first so that a machine without a driver gets a plain reason.
// Threading: per codec context, like the context itself. A decoder using NVDEC runs one FFmpeg
//      thread (NVDEC does the work; frame threads would each want their own surfaces).
#ifndef DEEPSCAN_VIDEO_HWACCEL_H_
#define DEEPSCAN_VIDEO_HWACCEL_H_

#include "deepscan/status.h"

struct AVCodecContext;
struct AVFrame;

namespace deepscan::video {

// Attaches CUDA device `device_id` to `cc` for decoding. Errors: kNotSupported, with the reason
// (no NVDEC path for this decoder in this FFmpeg build, no driver or device, device creation
// failed); `cc` is then unchanged and decodes in software.
Status AttachCudaDecoder(AVCodecContext* cc, int device_id = 0);

// True when `frame` lives in hardware (device) memory.
bool IsHardwareFrame(const AVFrame* frame);

// Copies hardware frame `hw` into `sw` (unreferenced on entry; gets new buffers) with its
// timestamps and properties. Errors: kInternal (the copy from the device failed).
Status DownloadFrame(const AVFrame* hw, AVFrame* sw);

}  // namespace deepscan::video

#endif  // DEEPSCAN_VIDEO_HWACCEL_H_
