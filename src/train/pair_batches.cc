#include "train/pair_batches.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include <opencv2/imgproc.hpp>

#include "infer/classifier.h"

namespace deepscan::train {
namespace {

Keypoints KeypointsOf(const CropRecord& r) { return r.keypoints; }

// The identity final augmentation: just the resize to the network input.
FinalAugmentParams PlainFinal(int size) {
  FinalAugmentParams p;
  p.output_size = size;
  return p;
}

}  // namespace

torch::Tensor CropsToTensor(const std::vector<cv::Mat>& crops, const std::array<float, 3>& mean,
                            const std::array<float, 3>& std) {
  const int64_t n = static_cast<int64_t>(crops.size());
  const int64_t s = n ? crops[0].rows : 0;
  torch::Tensor t = torch::empty({n, 3, s, s}, torch::kFloat32);
  infer::ModelMetadata m;
  m.input_size = static_cast<int>(s);
  m.mean = mean;
  m.std = std;
  Status st = infer::PackNchw(crops, 0, crops.size(), m, t.data_ptr<float>());
  TORCH_CHECK(st.ok(), st.ToString());
  return t;
}

namespace {

// The images, masks and rows of a batch being built.
struct PairSink {
  std::vector<cv::Mat> images, masks;
  Batch batch;
};

// Appends the pair of `row` (its real crop and a pseudo-fake made from it) to `out`; a cross-
// identity donor is drawn from `donors`.
Status AppendPair(CropStoreReader& reader, int64_t row, std::span<const int64_t> donors, const BatchOptions& o,
                  std::mt19937& rng, PairSink* out) {
  const int size = o.input_size;
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  FinalAugmentOptions fo = o.final_aug;
  fo.output_size = size;
  cv::Mat crop;
  RETURN_IF_ERROR(reader.Read(row, &crop));
  Keypoints kp = KeypointsOf(reader.records()[row]);
  std::optional<Landmarks68> landmarks = reader.records()[row].landmarks;  // hull masks when the store has them
  cv::Mat real = crop;
  if (o.augment) {
    BaseAugmentParams base = SampleBaseAugment(o.base, rng);
    ASSIGN_OR_RETURN(real, ApplyBaseAugment(base, crop));
    kp = TransformKeypoints(base, kp, crop.size());
    if (landmarks) TransformPoints(base, crop.size(), landmarks->data(), landmarks->size());
  }
  BlendSample fake;
  if (o.cross_blend_p > 0 && unit(rng) < o.cross_blend_p && donors.size() > 1) {
    std::uniform_int_distribution<size_t> pick(0, donors.size() - 1);
    int64_t donor_row = donors[pick(rng)];
    if (donor_row == row)
      donor_row = donors[(std::find(donors.begin(), donors.end(), row) - donors.begin() + 1) % donors.size()];
    cv::Mat donor;
    RETURN_IF_ERROR(reader.Read(donor_row, &donor));
    ASSIGN_OR_RETURN(fake,
                     MakeCrossBlended(real, kp, donor.clone(), reader.records()[donor_row].keypoints, o.cross, rng));
  } else {
    ASSIGN_OR_RETURN(fake, MakeSelfBlended(real, kp, o.sbi, rng, landmarks ? &*landmarks : nullptr));
  }
  if (o.augment && o.degrade.p > 0) {  // one draw for the pair: they differ only by the blend
    const DegradeParams d = SampleDegrade(o.degrade, rng);
    ASSIGN_OR_RETURN(real, ApplyDegrade(d, real));
    ASSIGN_OR_RETURN(fake.image, ApplyDegrade(d, fake.image));
  }
  FinalAugmentParams fr = o.augment ? SampleFinalAugment(fo, rng) : PlainFinal(size);
  FinalAugmentParams ff = o.augment ? SampleFinalAugment(fo, rng) : PlainFinal(size);
  ASSIGN_OR_RETURN(cv::Mat real_out, ApplyFinalAugment(fr, real));
  ASSIGN_OR_RETURN(cv::Mat fake_out, ApplyFinalAugment(ff, fake.image));
  out->images.push_back(real_out);
  out->images.push_back(fake_out);
  out->batch.rows.push_back(row);
  out->batch.rows.push_back(row);
  if (o.mask_size > 0) {
    ASSIGN_OR_RETURN(cv::Mat m, ApplyFinalAugmentToMask(ff, fake.mask));
    cv::Mat small;
    cv::resize(m, small, cv::Size(o.mask_size, o.mask_size), 0, 0, cv::INTER_AREA);
    out->masks.push_back(cv::Mat::zeros(o.mask_size, o.mask_size, CV_32F));
    out->masks.push_back(small);
  }
  return Status::Ok();
}

// The tensors of a finished sink.
Batch Finish(PairSink&& sink, const BatchOptions& o) {
  Batch batch = std::move(sink.batch);
  batch.images = CropsToTensor(sink.images, o.mean, o.std);
  const int64_t n = static_cast<int64_t>(sink.images.size());
  batch.labels = torch::zeros({n, 1}, torch::kFloat32);
  for (int64_t i = 1; i < n; i += 2) batch.labels[i][0] = 1.0f;
  if (o.mask_size > 0) {
    batch.masks = torch::empty({n, 1, o.mask_size, o.mask_size}, torch::kFloat32);
    for (int64_t i = 0; i < n; ++i) {
      cv::Mat m = sink.masks[i].isContinuous() ? sink.masks[i] : sink.masks[i].clone();
      std::memcpy(batch.masks[i].data_ptr<float>(), m.ptr<float>(), sizeof(float) * o.mask_size * o.mask_size);
    }
  }
  return batch;
}

}  // namespace

Result<Batch> MakePairBatch(CropStoreReader& reader, std::span<const int64_t> rows, const BatchOptions& o,
                            std::mt19937& rng) {
  PairSink sink;
  sink.images.reserve(rows.size() * 2);
  for (int64_t row : rows) RETURN_IF_ERROR(AppendPair(reader, row, rows, o, rng, &sink));
  return Finish(std::move(sink), o);
}

Result<Batch> MakePairBatchShard(CropStoreReader& reader, std::span<const int64_t> rows, size_t begin, size_t end,
                                 const BatchOptions& o, uint64_t batch_seed) {
  if (begin > end || end > rows.size()) return Status::Internal("MakePairBatchShard: shard outside the batch");
  PairSink sink;
  sink.images.reserve((end - begin) * 2);
  for (size_t k = begin; k < end; ++k) {
    std::seed_seq seq{static_cast<uint32_t>(batch_seed), static_cast<uint32_t>(batch_seed >> 32),
                      static_cast<uint32_t>(k), 0x9a1e5u};
    std::mt19937 rng(seq);
    RETURN_IF_ERROR(AppendPair(reader, rows[k], rows, o, rng, &sink));
  }
  return Finish(std::move(sink), o);
}

}  // namespace deepscan::train
