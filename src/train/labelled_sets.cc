#include "train/labelled_sets.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace fs = std::filesystem;

namespace deepscan::train {
namespace {

bool IsVideoFile(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e == ".mp4" || e == ".avi" || e == ".mov" || e == ".mkv" || e == ".webm";
}

std::vector<fs::path> VideosIn(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && IsVideoFile(e.path())) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<LabelledInput>> ReadDfdc(const fs::path& json_path) {
  std::ifstream in(json_path);
  if (!in) return Status::IoError("cannot read " + json_path.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(json_path.string() + ": " + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument(json_path.string() + ": expected an object of videos");
  std::vector<LabelledInput> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto& v = it.value();
    if (!v.is_object() || !v.contains("label"))
      return Status::InvalidArgument(json_path.string() + ": no label for " + it.key());
    LabelledInput li;
    li.name = it.key();
    li.label = ParseLabel(v["label"].get<std::string>());
    if (li.label < 0) return Status::InvalidArgument(json_path.string() + ": bad label for " + it.key());
    li.group = v.contains("original") && v["original"].is_string() ? v["original"].get<std::string>() : it.key();
    li.path = (json_path.parent_path() / it.key()).string();
    std::error_code ec;
    if (!fs::exists(li.path, ec)) return Status::NotFound(json_path.string() + ": listed video missing: " + it.key());
    out.push_back(std::move(li));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

Result<std::vector<LabelledInput>> ReadFfpp(const fs::path& root, const SetOptions& o) {
  std::vector<LabelledInput> out;
  std::error_code ec;
  auto add = [&](const fs::path& dir, int label) {
    for (const auto& v : VideosIn(dir)) {
      // Fakes are named "<target>_<source>.mp4"; the identity is the target id.
      std::string stem = v.stem().string();
      out.push_back({v.string(), fs::relative(v, root, ec).string(), label, "ffpp:" + stem.substr(0, stem.find('_'))});
    }
  };
  for (const auto& e : fs::directory_iterator(root / "original_sequences", ec)) {
    add(e.path() / o.ffpp_compression / "videos", 0);
  }
  for (const auto& e : fs::directory_iterator(root / "manipulated_sequences", ec)) {
    add(e.path() / o.ffpp_compression / "videos", 1);
  }
  if (out.empty()) return Status::NotFound(root.string() + ": no FF++ videos at compression " + o.ffpp_compression);
  return out;
}

Result<std::vector<LabelledInput>> ReadCelebDf(const fs::path& root, const SetOptions& o) {
  std::vector<LabelledInput> out;
  auto group_of = [](const fs::path& p) {
    std::string stem = p.stem().string();  // id0_id16_0000 (synthesis), id0_0000 (real), 00170 (YouTube)
    return "celebdf:" + stem.substr(0, stem.find('_'));
  };
  std::error_code ec;
  fs::path list = root / "List_of_testing_videos.txt";
  if (o.celebdf_test_list && fs::exists(list, ec)) {
    std::ifstream in(list);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      int flag;
      std::string rel;
      if (!(ls >> flag >> rel)) continue;
      fs::path p = root / rel;
      if (!fs::exists(p, ec)) return Status::NotFound(list.string() + ": listed video missing: " + rel);
      out.push_back({p.string(), rel, flag == 1 ? 0 : 1, group_of(p)});  // "1" marks a real video
    }
    return out;
  }
  for (const char* d : {"Celeb-real", "YouTube-real"}) {
    for (const auto& v : VideosIn(root / d))
      out.push_back({v.string(), fs::relative(v, root, ec).string(), 0, group_of(v)});
  }
  for (const auto& v : VideosIn(root / "Celeb-synthesis")) {
    out.push_back({v.string(), fs::relative(v, root, ec).string(), 1, group_of(v)});
  }
  if (out.empty()) return Status::NotFound(root.string() + ": no Celeb-DF videos");
  return out;
}

}  // namespace

std::string DetectSetLayout(const std::string& path) {
  std::error_code ec;
  fs::path p(path);
  if (fs::is_regular_file(p, ec)) {
    if (p.extension() == ".csv") return "csv";
    if (p.extension() == ".json") return "dfdc";
    return "";
  }
  if (!fs::is_directory(p, ec)) return "";
  if (fs::exists(p / "metadata.json", ec)) return "dfdc";
  if (fs::exists(p / "original_sequences", ec) || fs::exists(p / "manipulated_sequences", ec)) return "ffpp";
  if (fs::exists(p / "Celeb-synthesis", ec) || fs::exists(p / "Celeb-real", ec)) return "celebdf";
  return "";
}

Result<std::vector<LabelledInput>> ReadLabelledSet(const std::string& path, const SetOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Status::NotFound("no such file or folder: " + path);
  std::string layout = DetectSetLayout(path);
  fs::path p(path);
  if (layout == "csv") return ReadManifest(path);
  if (layout == "dfdc") return ReadDfdc(fs::is_directory(p, ec) ? p / "metadata.json" : p);
  if (layout == "ffpp") return ReadFfpp(p, options);
  if (layout == "celebdf") return ReadCelebDf(p, options);
  return Status::InvalidArgument(path + ": not a CSV, a DFDC metadata.json, or an FF++ / Celeb-DF folder");
}

}  // namespace deepscan::train
