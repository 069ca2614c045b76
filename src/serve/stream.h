// serve/stream: WS /v1/stream, live streams of frames scored as they arrive (docs/serve.md has
// the protocol).
//
// In:  an upgraded connection. The client sends binary messages, each one frame: an 8-byte
//      little-endian float64 timestamp (seconds) and the JPEG or PNG bytes; and optionally the
//      text message {"type":"end"}.
// Out: text messages (JSON): "ready" first; per frame scored a "frame" message (its faces with
//      scores and track ids, the frame's score, the running per-identity verdicts, the count of
//      frames dropped so far, the server latency); "error" for a frame that cannot be used;
//      "summary" after "end" or on server shutdown, then a close frame.
// How: three parts per stream.
//      - the stream's own thread (Server) runs the stream's own io_context: Beast's asynchronous WebSocket
//        reads (each frame message goes into a DropBuffer) and writes (one at a time, from an
//        outbox). Beast allows one read and one write in flight at once, all on this thread.
//      - a scoring thread takes the frames from the DropBuffer oldest first and scores them with
//        a StreamScorer, then posts the answer to the io_context. The buffer holds at most
//        `stream_buffer` frames: when a frame arrives and it is full, the OLDEST waiting frame is
//        dropped (a live view wants the newest), counted, and reported in every answer. So the
//        latency of a frame is bounded by (buffer + 1) frame times, whatever the client sends.
//      - StreamScorer: the detection schedule of a scan (pipeline::FaceFinder: whole-frame search
//        every --detect-every frames, re-find crops with front-128 between), track::FaceTracker
//        for identities, and the crops classified through the FrameScorer's dynamic batcher, so
//        streams and /v1/frames requests share batches (serve/batcher.h).
//      Each stream leases a detector pair (whole-frame + re-find) for its lifetime: the hub
//      holds --max-streams pairs, and an upgrade request beyond them gets 503 before upgrading.
// Threading: StreamHub's methods are thread-safe. A StreamScorer belongs to one stream's
//      scoring thread. DropBuffer is thread-safe.
#ifndef DEEPSCAN_SERVE_STREAM_H_
#define DEEPSCAN_SERVE_STREAM_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "deepscan/options.h"
#include "deepscan/status.h"
#include "face/blazeface.h"
#include "pipeline/face_finder.h"
#include "serve/frame_scorer.h"
#include "serve/serve_options.h"
#include "serve/service_metrics.h"
#include "serve/session_pool.h"
#include "serve/stream_message.h"
#include "track/tracker.h"

namespace deepscan::serve {

// A bounded FIFO that drops its oldest item to make room: the buffer between a stream's reader
// and its scoring thread.
template <typename T>
class DropBuffer {
 public:
  explicit DropBuffer(size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

  // Adds `item`; when full, drops the oldest waiting item first. Returns the items dropped (0/1).
  int Push(T item) {
    int dropped = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (items_.size() >= capacity_) {
        items_.pop_front();
        dropped = 1;
        ++dropped_;
      }
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
    return dropped;
  }
  // Waits for an item. Returns nullopt once Close() was called and (unless `drain`) at once, or
  // (with `drain`) when the buffer is empty.
  std::optional<T> Pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty() || (closed_ && !drain_)) return std::nullopt;
    T item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  // No more items: Pop returns what is left when `drain`, else nothing more.
  void Close(bool drain) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      drain_ = closed_ ? drain_ && drain : drain;  // a drain can be cut short, never restarted
      closed_ = true;
    }
    cv_.notify_all();
  }
  uint64_t dropped() const {
    std::lock_guard<std::mutex> lock(mu_);
    return dropped_;
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_.size();
  }
  size_t capacity() const { return capacity_; }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
  uint64_t dropped_ = 0;
  bool closed_ = false, drain_ = false;
};

// The whole-frame detector and the re-find detector one stream uses.
struct DetectorPair {
  std::unique_ptr<face::BlazeFaceDetector> detector;
  std::unique_ptr<face::BlazeFaceDetector> refinder;  // null: the detector re-finds too
};

// One stream's scoring state: where its faces are, who they are, what each looks like so far.
class StreamScorer {
 public:
  // Everything must outlive the scorer. `max_identities`: identities remembered (oldest forgotten).
  StreamScorer(DetectorPair* detectors, FrameScorer* frames, const ScanOptions& options, size_t max_identities = 256);

  // Scores the frame taken at `timestamp_s` (not before the previous frame's). Fills the "frame"
  // message's fields: timestamp_s, score, label, faces, identities. Errors: kInvalidArgument
  // (timestamp going back), the detector's and the batcher's (kTooLarge "overloaded: ...").
  Status Score(double timestamp_s, const cv::Mat& bgr, nlohmann::json* message);

  // The running per-identity verdicts, in track-id order.
  nlohmann::json Identities() const;
  int64_t frames_scored() const { return frames_; }
  // Wall time of the last Score()'s detection and classification (the batcher's wait included).
  double last_detect_s() const { return last_detect_s_; }
  double last_classify_s() const { return last_classify_s_; }

 private:
  struct Identity {
    int frames = 0;
    double sum = 0, recent = 0;  // sum of face scores; exponential moving average (recent frames)
    double first_s = 0, last_s = 0;
  };

  FrameScorer* frames_scorer_;
  const size_t max_identities_;
  pipeline::FaceFinder finder_;
  track::FaceTracker tracker_;
  std::map<int, Identity> identities_;
  double last_ts_ = -1;
  int64_t frames_ = 0;
  double last_detect_s_ = 0, last_classify_s_ = 0;
};

// What one stream did, for the access log.
struct StreamStats {
  bool upgraded = false;  // the WebSocket handshake completed (else Beast answered the request itself)
  uint64_t bytes_in = 0;  // message payload bytes received
  int64_t frames = 0;     // frame messages received
  int64_t scored = 0;     // of those, scored and answered
  uint64_t dropped = 0;   // of those, dropped by the buffer
};

class StreamHub {
 public:
  // Loads `options.max_streams` detector pairs (one ONNX Runtime thread each).
  static Result<std::unique_ptr<StreamHub>> Create(const ServeOptions& options, const ScanOptions& scan,
                                                   ServiceMetrics* metrics);
  ~StreamHub();

  // A stream's place: one detector pair, leased until the stream ends.
  using Ticket = SessionPool<DetectorPair>::Lease;
  // A place for one more stream; nullopt when --max-streams are open or shutting down.
  std::optional<Ticket> TryOpen();

  // Upgrades the connection `fd` (this function owns it from now on) with the client's request
  // and serves the stream until it ends, its faces classified by `frames` (the A/B variant
  // `variant`'s). Blocks the calling (connection) thread. Returns what the stream did, for the
  // access log.
  StreamStats Serve(int fd, const boost::beast::http::request<boost::beast::http::empty_body>& upgrade, Ticket ticket,
                    FrameScorer* frames, const std::string& variant);

  // Every open stream scores the frames it holds (frames arriving later are answered with a
  // `stream_ending` error), sends its summary and closes with 1001 (going away); no stream opens
  // any more. Returns at once (Serve calls return as their streams end).
  void Shutdown();

  int open_streams() const { return open_.load(); }

 private:
  class Session;
  StreamHub(const ServeOptions& options, const ScanOptions& scan, ServiceMetrics* metrics,
            std::vector<std::unique_ptr<DetectorPair>> pairs);

  const ServeOptions& options_;
  const ScanOptions scan_;
  ServiceMetrics* metrics_;
  SessionPool<DetectorPair> pairs_;
  std::atomic<int> open_{0};
  std::mutex mu_;  // guards sessions_, stopping_
  std::set<Session*> sessions_;
  bool stopping_ = false;
};

}  // namespace deepscan::serve

#endif  // DEEPSCAN_SERVE_STREAM_H_
