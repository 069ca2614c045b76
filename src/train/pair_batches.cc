#include "train/pair_batches.h"

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

Result<Batch> MakePairBatch(CropStoreReader& reader, std::span<const int64_t> rows, const BatchOptions& o,
                            std::mt19937& rng) {
  const int size = o.input_size;
  std::vector<cv::Mat> images;
  std::vector<cv::Mat> masks;
  Batch batch;
  images.reserve(rows.size() * 2);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::uniform_int_distribution<size_t> pick(0, rows.size() - 1);
  FinalAugmentOptions fo = o.final_aug;
  fo.output_size = size;
  for (int64_t row : rows) {
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
    if (o.cross_blend_p > 0 && unit(rng) < o.cross_blend_p && rows.size() > 1) {
      int64_t donor_row = rows[pick(rng)];
      if (donor_row == row)
        donor_row = rows[(std::find(rows.begin(), rows.end(), row) - rows.begin() + 1) % rows.size()];
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
    images.push_back(real_out);
    images.push_back(fake_out);
    batch.rows.push_back(row);
    batch.rows.push_back(row);
    if (o.mask_size > 0) {
      ASSIGN_OR_RETURN(cv::Mat m, ApplyFinalAugmentToMask(ff, fake.mask));
      cv::Mat small;
      cv::resize(m, small, cv::Size(o.mask_size, o.mask_size), 0, 0, cv::INTER_AREA);
      masks.push_back(cv::Mat::zeros(o.mask_size, o.mask_size, CV_32F));
      masks.push_back(small);
    }
  }
  batch.images = CropsToTensor(images, o.mean, o.std);
  const int64_t n = static_cast<int64_t>(images.size());
  batch.labels = torch::zeros({n, 1}, torch::kFloat32);
  for (int64_t i = 1; i < n; i += 2) batch.labels[i][0] = 1.0f;
  if (o.mask_size > 0) {
    batch.masks = torch::empty({n, 1, o.mask_size, o.mask_size}, torch::kFloat32);
    for (int64_t i = 0; i < n; ++i) {
      cv::Mat m = masks[i].isContinuous() ? masks[i] : masks[i].clone();
      std::memcpy(batch.masks[i].data_ptr<float>(), m.ptr<float>(), sizeof(float) * o.mask_size * o.mask_size);
    }
  }
  return batch;
}

}  // namespace deepscan::train
