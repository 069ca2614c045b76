// train::CropStore: the face-crop store that training reads (HDF5, chunked, compressed).
//
// Layout of a store file (one row per crop; docs/crop-store.md):
//   /crops          uint8  [N, S, S, 3]  BGR, one chunk per crop, shuffle + deflate
//   /keypoints      float  [N, 6, 2]     BlazeFace keypoints in crop pixels
//   /landmarks      float  [N, 68, 2]    68-point landmarks (iBUG order, face/landmarks.h) in crop pixels;
//                                        a row of NaNs where none were computed
//   /boxes          float  [N, 4]        face box in source-frame pixels (x, y, w, h)
//   /timestamps     double [N]           seconds into the source (0 for photos)
//   /frame_indices  int64  [N]
//   /det_scores     float  [N]
//   /labels         int8   [N]           0 real, 1 fake
//   /source_ids     int32  [N]           index into /source_names
//   /group_ids      int32  [N]           index into /group_names (identity groups)
//   /source_names, /group_names          variable-length strings
//   attributes: format ("deepscan-crop-store"), format_version (int, kCropStoreFormatVersion), crop_size,
//               margin, deepscan_version
// Versions: 1 had no format attributes and no /landmarks: read, with every record's landmarks absent.
// 2 added /landmarks. A later version, or another `format`, is refused (kNotSupported, kCorruptInput).
// The writer appends; the reader reads one crop at a time through HDF5's chunk cache plus an
// LRU of decoded crops, so a store far larger than memory trains in bounded memory.
// Threading: a writer or reader is used by one thread at a time (HDF5 here is not thread-safe).
#ifndef DEEPSCAN_TRAIN_CROP_STORE_H_
#define DEEPSCAN_TRAIN_CROP_STORE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "deepscan/status.h"
#include "deepscan/verdict.h"
#include "face/landmarks.h"

namespace deepscan::train {

// The version this build writes; it reads 1 to this.
constexpr int kCropStoreFormatVersion = 2;

struct CropRecord {
  std::array<Point, 6> keypoints{};          // crop pixels
  std::optional<face::Landmarks> landmarks;  // crop pixels; none when not computed (or a version-1 store)
  Box box;                                   // source-frame pixels
  double timestamp_s = 0;
  int64_t frame_index = 0;
  float det_score = 0;
  int label = 0;       // 0 real, 1 fake
  std::string source;  // clip or photo path (relative to the data root)
  std::string group;   // identity group ("person:AOC", "clip:...")
};

class CropStoreWriter {
 public:
  // Creates (truncates) `path` for crops of `crop_size` x `crop_size`. Errors: kIoError.
  static Result<std::unique_ptr<CropStoreWriter>> Create(const std::string& path, int crop_size, float margin);
  ~CropStoreWriter();  // Close()s
  // Appends one crop (crop_size x crop_size BGR). Errors: kInvalidArgument (wrong crop, non-finite
  // landmarks), kIoError.
  Status Append(const cv::Mat& crop, const CropRecord& record);
  // Writes the string tables and closes the file; later calls do nothing.
  Status Close();
  int64_t size() const;

 private:
  struct Impl;
  explicit CropStoreWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class CropStoreReader {
 public:
  // Opens `path`; `cache_crops` decoded crops are kept in an LRU. Errors: kNotFound (no such file),
  // kCorruptInput (not a crop store,
  // missing or inconsistent datasets), kNotSupported (written by a newer deepscan: a format_version above
  // kCropStoreFormatVersion).
  static Result<std::unique_ptr<CropStoreReader>> Open(const std::string& path, size_t cache_crops = 512);
  ~CropStoreReader();
  int64_t size() const;
  // 1 for stores written before the format was versioned (no landmarks), else the stored format_version.
  int format_version() const;
  int crop_size() const;
  float margin() const;
  // All records' metadata (small: kept in memory), row i = crop i.
  const std::vector<CropRecord>& records() const;
  // Reads crop `i` (0 <= i < size()) into `crop` (shares the cached buffer: clone before writing).
  Status Read(int64_t i, cv::Mat* crop);
  // Cache statistics, for tests and tuning.
  int64_t cache_hits() const;
  int64_t cache_misses() const;

 private:
  struct Impl;
  explicit CropStoreReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_CROP_STORE_H_
