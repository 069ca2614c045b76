#include "train/evaluate.h"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace deepscan::train {

LevelMetrics Measure(const std::vector<float>& scores, const std::vector<int>& labels, double threshold) {
  LevelMetrics m;
  m.count = static_cast<int64_t>(scores.size());
  for (int l : labels) m.positives += l;
  if (scores.empty()) return m;
  if (auto auc = RocAuc(scores, labels); auc.ok()) m.auc = *auc;
  if (auto ll = LogLoss(scores, labels); ll.ok()) m.log_loss = *ll;
  if (auto e = Eer(scores, labels); e.ok()) {
    m.eer = e->eer;
    m.eer_threshold = e->threshold;
  }
  if (auto c = Confusion(scores, labels, threshold); c.ok()) {
    m.confusion = *c;
    m.accuracy = c->accuracy();
  }
  if (auto roc = RocCurve(scores, labels); roc.ok()) m.roc = *roc;
  return m;
}

EvalReport Evaluate(const std::vector<LabelledInput>& inputs, Scanner& scanner,
                    const std::function<void(int, int)>& progress) {
  EvalReport r;
  r.model = scanner.model().name + " " + scanner.model().version;
  r.threshold = scanner.options().aggregation.threshold >= 0 ? scanner.options().aggregation.threshold
                                                             : scanner.model().threshold;
  std::vector<float> vs, fs;
  std::vector<int> vl, fl;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const LabelledInput& in = inputs[i];
    VideoVerdict v = scanner.Scan(in.path);
    EvalVideo item{in.name, in.label, v.status, -1, v.error.ok() ? "" : v.error.ToString()};
    ++r.videos;
    if (v.status == VideoStatus::kOk) {
      ++r.scored;
      item.score = *v.score;
      vs.push_back(*v.score);
      vl.push_back(in.label);
      for (const FrameResult& f : v.frames) {
        if (!f.score) continue;
        fs.push_back(*f.score);
        fl.push_back(in.label);
      }
    } else if (v.status == VideoStatus::kNoFace) {
      ++r.no_face;
    } else {
      ++r.errors;
    }
    r.items.push_back(std::move(item));
    if (progress) progress(static_cast<int>(i + 1), static_cast<int>(inputs.size()));
  }
  r.video = Measure(vs, vl, r.threshold);
  r.frame = Measure(fs, fl, r.threshold);
  return r;
}

namespace {

nlohmann::json LevelToJson(const LevelMetrics& m) {
  auto num = [](double x) { return x < 0 ? nlohmann::json(nullptr) : nlohmann::json(x); };
  return {
      {"count", m.count},
      {"fakes", m.positives},
      {"auc", num(m.auc)},
      {"log_loss", num(m.log_loss)},
      {"eer", num(m.eer)},
      {"eer_threshold", num(m.eer_threshold)},
      {"accuracy", m.accuracy},
      {"confusion", {{"tp", m.confusion.tp}, {"fp", m.confusion.fp}, {"tn", m.confusion.tn}, {"fn", m.confusion.fn}}}};
}

}  // namespace

Status WriteEvalReport(const EvalReport& r, const std::string& title, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create " + dir);
  nlohmann::json j = {{"model", r.model},
                      {"threshold", r.threshold},
                      {"videos", r.videos},
                      {"scored", r.scored},
                      {"no_face", r.no_face},
                      {"errors", r.errors},
                      {"video_level", LevelToJson(r.video)},
                      {"frame_level", LevelToJson(r.frame)}};
  std::ofstream(dir + "/eval.json") << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  std::ofstream csv(dir + "/scores.csv");
  csv << "video,label,status,score,error\n";
  for (const EvalVideo& v : r.items) {
    csv << '"' << v.name << "\"," << v.label << ',' << StatusName(v.status) << ',';
    if (v.score >= 0) csv << v.score;
    csv << ",\"" << v.error << "\"\n";
  }
  if (!csv) return Status::IoError("cannot write " + dir + "/scores.csv");
  std::vector<RocSeries> series;
  if (r.video.auc >= 0) series.push_back({"video level", r.video.roc, r.video.auc});
  if (r.frame.auc >= 0) series.push_back({"frame level", r.frame.roc, r.frame.auc});
  if (!series.empty()) RETURN_IF_ERROR(WriteRocPlot(series, title, dir + "/roc.png"));
  return Status::Ok();
}

}  // namespace deepscan::train
