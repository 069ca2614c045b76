#include "train/crop_store.h"

#include <H5Cpp.h>

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <limits>
#include <list>
#include <map>
#include <unordered_map>

#include "deepscan/version.h"

namespace deepscan::train {
namespace {

// Writes a 1-D or N-D dataset of `type` from `data` in one call.
template <typename T>
void WriteArray(H5::H5File& f, const std::string& name, const H5::PredType& type, const std::vector<hsize_t>& dims,
                const std::vector<T>& data) {
  H5::DataSpace space(static_cast<int>(dims.size()), dims.data());
  H5::DataSet ds = f.createDataSet(name, type, space);
  if (!data.empty()) ds.write(data.data(), type);
}

void WriteStrings(H5::H5File& f, const std::string& name, const std::vector<std::string>& strings) {
  std::vector<const char*> ptrs;
  for (const auto& s : strings) ptrs.push_back(s.c_str());
  hsize_t n = ptrs.size();
  H5::DataSpace space(1, &n);
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  H5::DataSet ds = f.createDataSet(name, type, space);
  if (n) ds.write(ptrs.data(), type);
}

template <typename T>
std::vector<T> ReadArray(H5::H5File& f, const std::string& name, const H5::PredType& type, size_t expect) {
  H5::DataSet ds = f.openDataSet(name);
  std::vector<T> v(static_cast<size_t>(ds.getSpace().getSimpleExtentNpoints()));
  if (v.size() != expect) throw H5::Exception("ReadArray", name + ": wrong length");
  if (!v.empty()) ds.read(v.data(), type);
  return v;
}

std::vector<std::string> ReadStrings(H5::H5File& f, const std::string& name) {
  H5::DataSet ds = f.openDataSet(name);
  size_t n = static_cast<size_t>(ds.getSpace().getSimpleExtentNpoints());
  std::vector<char*> ptrs(n, nullptr);
  H5::StrType type(H5::PredType::C_S1, H5T_VARIABLE);
  if (n) ds.read(ptrs.data(), type);
  std::vector<std::string> out;
  for (char* p : ptrs) out.emplace_back(p ? p : "");
  if (n) H5::DataSet::vlenReclaim(ptrs.data(), type, ds.getSpace());
  return out;
}

constexpr const char* kFormatName = "deepscan-crop-store";
constexpr int kLandmarkFloats = face::kLandmarkCount * 2;

int32_t Intern(const std::string& s, std::map<std::string, int32_t>* index, std::vector<std::string>* table) {
  auto [it, inserted] = index->emplace(s, static_cast<int32_t>(table->size()));
  if (inserted) table->push_back(s);
  return it->second;
}

}  // namespace

// ---- writer ---------------------------------------------------------------------------------
struct CropStoreWriter::Impl {
  H5::H5File file;
  H5::DataSet crops;
  int size = 0;
  float margin = 0;
  int64_t count = 0;
  bool closed = false;
  std::vector<float> keypoints, landmarks, boxes, det_scores;
  std::vector<double> timestamps;
  std::vector<int64_t> frame_indices;
  std::vector<int8_t> labels;
  std::vector<int32_t> source_ids, group_ids;
  std::map<std::string, int32_t> source_index, group_index;
  std::vector<std::string> sources, groups;
};

CropStoreWriter::CropStoreWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CropStoreWriter::~CropStoreWriter() { Close(); }
int64_t CropStoreWriter::size() const { return impl_->count; }

Result<std::unique_ptr<CropStoreWriter>> CropStoreWriter::Create(const std::string& path, int crop_size, float margin) {
  if (crop_size < 16 || crop_size > 1024) return Status::InvalidArgument("crop size out of range");
  auto impl = std::make_unique<Impl>();
  impl->size = crop_size;
  impl->margin = margin;
  try {
    H5::Exception::dontPrint();
    impl->file = H5::H5File(path, H5F_ACC_TRUNC);
    const hsize_t s = static_cast<hsize_t>(crop_size);
    hsize_t dims[4] = {0, s, s, 3}, max_dims[4] = {H5S_UNLIMITED, s, s, 3}, chunk[4] = {1, s, s, 3};
    H5::DataSpace space(4, dims, max_dims);
    H5::DSetCreatPropList props;
    props.setChunk(4, chunk);
    props.setShuffle();
    props.setDeflate(4);
    impl->crops = impl->file.createDataSet("crops", H5::PredType::NATIVE_UINT8, space, props);
  } catch (const H5::Exception& e) {
    return Status::IoError("cannot create crop store " + path + ": " + e.getDetailMsg());
  }
  return std::unique_ptr<CropStoreWriter>(new CropStoreWriter(std::move(impl)));
}

Status CropStoreWriter::Append(const cv::Mat& crop, const CropRecord& r) {
  Impl& s = *impl_;
  if (s.closed) return Status::InvalidArgument("store is closed");
  if (crop.rows != s.size || crop.cols != s.size || crop.type() != CV_8UC3) {
    return Status::InvalidArgument("crop must be " + std::to_string(s.size) + "x" + std::to_string(s.size) + " BGR");
  }
  if (r.landmarks) {
    for (const Point& p : *r.landmarks) {
      if (!std::isfinite(p.x) || !std::isfinite(p.y)) return Status::InvalidArgument("landmarks must be finite");
    }
  }
  cv::Mat contiguous = crop.isContinuous() ? crop : crop.clone();
  try {
    const hsize_t n = static_cast<hsize_t>(s.count);
    const hsize_t sz = static_cast<hsize_t>(s.size);
    hsize_t new_dims[4] = {n + 1, sz, sz, 3};
    s.crops.extend(new_dims);
    H5::DataSpace file_space = s.crops.getSpace();
    hsize_t start[4] = {n, 0, 0, 0}, count[4] = {1, sz, sz, 3};
    file_space.selectHyperslab(H5S_SELECT_SET, count, start);
    H5::DataSpace mem_space(4, count);
    s.crops.write(contiguous.data, H5::PredType::NATIVE_UINT8, mem_space, file_space);
  } catch (const H5::Exception& e) {
    return Status::IoError("cannot append a crop: " + e.getDetailMsg());
  }
  for (const Point& p : r.keypoints) {
    s.keypoints.push_back(p.x);
    s.keypoints.push_back(p.y);
  }
  if (r.landmarks) {
    for (const Point& p : *r.landmarks) {
      s.landmarks.push_back(p.x);
      s.landmarks.push_back(p.y);
    }
  } else {
    s.landmarks.insert(s.landmarks.end(), kLandmarkFloats, std::numeric_limits<float>::quiet_NaN());
  }
  s.boxes.insert(s.boxes.end(), {r.box.x, r.box.y, r.box.w, r.box.h});
  s.timestamps.push_back(r.timestamp_s);
  s.frame_indices.push_back(r.frame_index);
  s.det_scores.push_back(r.det_score);
  s.labels.push_back(static_cast<int8_t>(r.label));
  s.source_ids.push_back(Intern(r.source, &s.source_index, &s.sources));
  s.group_ids.push_back(Intern(r.group, &s.group_index, &s.groups));
  ++s.count;
  return Status::Ok();
}

Status CropStoreWriter::Close() {
  Impl& s = *impl_;
  if (s.closed) return Status::Ok();
  s.closed = true;
  try {
    const hsize_t n = static_cast<hsize_t>(s.count);
    WriteArray(s.file, "keypoints", H5::PredType::NATIVE_FLOAT, {n, 6, 2}, s.keypoints);
    WriteArray(s.file, "landmarks", H5::PredType::NATIVE_FLOAT, {n, face::kLandmarkCount, 2}, s.landmarks);
    WriteArray(s.file, "boxes", H5::PredType::NATIVE_FLOAT, {n, 4}, s.boxes);
    WriteArray(s.file, "timestamps", H5::PredType::NATIVE_DOUBLE, {n}, s.timestamps);
    WriteArray(s.file, "frame_indices", H5::PredType::NATIVE_INT64, {n}, s.frame_indices);
    WriteArray(s.file, "det_scores", H5::PredType::NATIVE_FLOAT, {n}, s.det_scores);
    WriteArray(s.file, "labels", H5::PredType::NATIVE_INT8, {n}, s.labels);
    WriteArray(s.file, "source_ids", H5::PredType::NATIVE_INT32, {n}, s.source_ids);
    WriteArray(s.file, "group_ids", H5::PredType::NATIVE_INT32, {n}, s.group_ids);
    WriteStrings(s.file, "source_names", s.sources);
    WriteStrings(s.file, "group_names", s.groups);
    H5::DataSpace scalar(H5S_SCALAR);
    H5::StrType str(H5::PredType::C_S1, H5T_VARIABLE);
    s.file.createAttribute("format", str, scalar).write(str, std::string(kFormatName));
    const int version = kCropStoreFormatVersion;
    s.file.createAttribute("format_version", H5::PredType::NATIVE_INT, scalar)
        .write(H5::PredType::NATIVE_INT, &version);
    s.file.createAttribute("crop_size", H5::PredType::NATIVE_INT, scalar).write(H5::PredType::NATIVE_INT, &s.size);
    s.file.createAttribute("margin", H5::PredType::NATIVE_FLOAT, scalar).write(H5::PredType::NATIVE_FLOAT, &s.margin);
    s.file.createAttribute("deepscan_version", str, scalar).write(str, std::string(kVersion));
    s.crops.close();
    s.file.close();
  } catch (const H5::Exception& e) {
    return Status::IoError("cannot finish the crop store: " + e.getDetailMsg());
  }
  return Status::Ok();
}

// ---- reader ---------------------------------------------------------------------------------
struct CropStoreReader::Impl {
  H5::H5File file;
  H5::DataSet crops;
  int size = 0;
  float margin = 0;
  int version = 1;
  std::vector<CropRecord> records;
  size_t capacity = 512;
  std::list<int64_t> lru;  // most recent first
  std::unordered_map<int64_t, std::pair<cv::Mat, std::list<int64_t>::iterator>> cache;
  int64_t hits = 0, misses = 0;
};

CropStoreReader::CropStoreReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CropStoreReader::~CropStoreReader() = default;
int64_t CropStoreReader::size() const { return static_cast<int64_t>(impl_->records.size()); }
int CropStoreReader::crop_size() const { return impl_->size; }
float CropStoreReader::margin() const { return impl_->margin; }
int CropStoreReader::format_version() const { return impl_->version; }
const std::vector<CropRecord>& CropStoreReader::records() const { return impl_->records; }
int64_t CropStoreReader::cache_hits() const { return impl_->hits; }
int64_t CropStoreReader::cache_misses() const { return impl_->misses; }

Result<std::unique_ptr<CropStoreReader>> CropStoreReader::Open(const std::string& path, size_t cache_crops) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound("no such crop store: " + path);
  auto impl = std::make_unique<Impl>();
  impl->capacity = std::max<size_t>(1, cache_crops);
  try {
    H5::Exception::dontPrint();
    // A small HDF5 chunk cache: our own LRU holds decoded crops, so HDF5 need not hold many.
    H5::FileAccPropList access;
    access.setCache(0, 521, 8 << 20, 0.75);
    impl->file = H5::H5File(path, H5F_ACC_RDONLY, H5::FileCreatPropList::DEFAULT, access);
    // Version 1 stores carry neither attribute; every later one carries both.
    if (impl->file.attrExists("format")) {
      H5::Attribute a = impl->file.openAttribute("format");
      std::string format;
      a.read(a.getStrType(), format);
      if (format != kFormatName) return Status::CorruptInput(path + ": not a crop store (format \"" + format + "\")");
      if (!impl->file.attrExists("format_version")) return Status::CorruptInput(path + ": no format_version");
      impl->file.openAttribute("format_version").read(H5::PredType::NATIVE_INT, &impl->version);
      if (impl->version > kCropStoreFormatVersion) {
        return Status::NotSupported(path + ": crop store format_version " + std::to_string(impl->version) +
                                    " was written by a newer deepscan; this one reads versions 1 to " +
                                    std::to_string(kCropStoreFormatVersion));
      }
      if (impl->version < 2) {
        return Status::CorruptInput(path + ": bad crop store format_version " + std::to_string(impl->version));
      }
    }
    impl->crops = impl->file.openDataSet("crops");
    hsize_t dims[4];
    if (impl->crops.getSpace().getSimpleExtentNdims() != 4) return Status::CorruptInput(path + ": crops must be 4-D");
    impl->crops.getSpace().getSimpleExtentDims(dims);
    const size_t n = static_cast<size_t>(dims[0]);
    impl->file.openAttribute("crop_size").read(H5::PredType::NATIVE_INT, &impl->size);
    impl->file.openAttribute("margin").read(H5::PredType::NATIVE_FLOAT, &impl->margin);
    if (dims[1] != static_cast<hsize_t>(impl->size) || dims[3] != 3)
      return Status::CorruptInput(path + ": bad crop shape");
    auto kp = ReadArray<float>(impl->file, "keypoints", H5::PredType::NATIVE_FLOAT, n * 12);
    std::vector<float> landmarks;
    if (impl->version >= 2) {
      landmarks = ReadArray<float>(impl->file, "landmarks", H5::PredType::NATIVE_FLOAT, n * kLandmarkFloats);
    }
    auto boxes = ReadArray<float>(impl->file, "boxes", H5::PredType::NATIVE_FLOAT, n * 4);
    auto ts = ReadArray<double>(impl->file, "timestamps", H5::PredType::NATIVE_DOUBLE, n);
    auto fi = ReadArray<int64_t>(impl->file, "frame_indices", H5::PredType::NATIVE_INT64, n);
    auto ds = ReadArray<float>(impl->file, "det_scores", H5::PredType::NATIVE_FLOAT, n);
    auto labels = ReadArray<int8_t>(impl->file, "labels", H5::PredType::NATIVE_INT8, n);
    auto sid = ReadArray<int32_t>(impl->file, "source_ids", H5::PredType::NATIVE_INT32, n);
    auto gid = ReadArray<int32_t>(impl->file, "group_ids", H5::PredType::NATIVE_INT32, n);
    auto sources = ReadStrings(impl->file, "source_names");
    auto groups = ReadStrings(impl->file, "group_names");
    impl->records.resize(n);
    for (size_t i = 0; i < n; ++i) {
      CropRecord& r = impl->records[i];
      for (int k = 0; k < 6; ++k) r.keypoints[k] = {kp[i * 12 + 2 * k], kp[i * 12 + 2 * k + 1]};
      if (!landmarks.empty()) {
        const float* row = &landmarks[i * kLandmarkFloats];
        const int nans =
            static_cast<int>(std::count_if(row, row + kLandmarkFloats, [](float v) { return std::isnan(v); }));
        if (nans == 0) {
          r.landmarks.emplace();
          for (int k = 0; k < face::kLandmarkCount; ++k) (*r.landmarks)[k] = {row[2 * k], row[2 * k + 1]};
        } else if (nans != kLandmarkFloats) {
          return Status::CorruptInput(path + ": partly missing landmarks at row " + std::to_string(i));
        }
      }
      r.box = {boxes[i * 4], boxes[i * 4 + 1], boxes[i * 4 + 2], boxes[i * 4 + 3]};
      r.timestamp_s = ts[i];
      r.frame_index = fi[i];
      r.det_score = ds[i];
      r.label = labels[i];
      if (sid[i] < 0 || static_cast<size_t>(sid[i]) >= sources.size() || gid[i] < 0 ||
          static_cast<size_t>(gid[i]) >= groups.size()) {
        return Status::CorruptInput(path + ": string index out of range at row " + std::to_string(i));
      }
      r.source = sources[sid[i]];
      r.group = groups[gid[i]];
    }
  } catch (const H5::Exception& e) {
    return Status::CorruptInput("cannot read crop store " + path + ": " + e.getDetailMsg());
  }
  return std::unique_ptr<CropStoreReader>(new CropStoreReader(std::move(impl)));
}

Status CropStoreReader::Read(int64_t i, cv::Mat* crop) {
  Impl& s = *impl_;
  if (i < 0 || i >= size()) return Status::InvalidArgument("crop index out of range");
  auto it = s.cache.find(i);
  if (it != s.cache.end()) {
    ++s.hits;
    s.lru.splice(s.lru.begin(), s.lru, it->second.second);
    *crop = it->second.first;
    return Status::Ok();
  }
  ++s.misses;
  cv::Mat m(s.size, s.size, CV_8UC3);
  try {
    const hsize_t sz = static_cast<hsize_t>(s.size);
    H5::DataSpace file_space = s.crops.getSpace();
    hsize_t start[4] = {static_cast<hsize_t>(i), 0, 0, 0}, count[4] = {1, sz, sz, 3};
    file_space.selectHyperslab(H5S_SELECT_SET, count, start);
    H5::DataSpace mem_space(4, count);
    s.crops.read(m.data, H5::PredType::NATIVE_UINT8, mem_space, file_space);
  } catch (const H5::Exception& e) {
    return Status::IoError("cannot read crop " + std::to_string(i) + ": " + e.getDetailMsg());
  }
  if (s.cache.size() >= s.capacity) {
    s.cache.erase(s.lru.back());
    s.lru.pop_back();
  }
  s.lru.push_front(i);
  s.cache.emplace(i, std::make_pair(m, s.lru.begin()));
  *crop = m;
  return Status::Ok();
}

}  // namespace deepscan::train
