#include "imglab.h"

#include <algorithm>

#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>

namespace deepscan::testing {

std::vector<ImglabImage> ReadImglab(const std::string& path) {
  boost::property_tree::ptree tree;
  boost::property_tree::read_xml(path, tree);
  std::vector<ImglabImage> out;
  for (const auto& [tag, image] : tree.get_child("dataset.images")) {
    if (tag != "image") continue;
    ImglabImage a;
    a.file = image.get<std::string>("<xmlattr>.file");
    for (const auto& [box_tag, box] : image) {
      if (box_tag != "box" || box.get<int>("<xmlattr>.ignore", 0) != 0) continue;
      ImglabFace f;
      f.box = {box.get<float>("<xmlattr>.left"), box.get<float>("<xmlattr>.top"), box.get<float>("<xmlattr>.width"),
               box.get<float>("<xmlattr>.height")};
      for (const auto& [part_tag, part] : box) {
        if (part_tag != "part") continue;
        const std::string name = part.get<std::string>("<xmlattr>.name");
        if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          continue;
        }
        f.parts.emplace_back(std::stoi(name), Point{part.get<float>("<xmlattr>.x"), part.get<float>("<xmlattr>.y")});
      }
      a.faces.push_back(std::move(f));
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<std::pair<int, int>> GreedyMatch(const std::vector<Box>& truth, const std::vector<face::Detection>& dets,
                                             float min_iou) {
  struct Pair {
    float iou;
    int t, d;
  };
  std::vector<Pair> pairs;
  for (int t = 0; t < static_cast<int>(truth.size()); ++t) {
    for (int d = 0; d < static_cast<int>(dets.size()); ++d) {
      const float v = face::IoU(truth[t], dets[d].box);
      if (v >= min_iou) pairs.push_back({v, t, d});
    }
  }
  std::sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
  std::vector<bool> t_used(truth.size()), d_used(dets.size());
  std::vector<std::pair<int, int>> out;
  for (const Pair& p : pairs) {
    if (t_used[p.t] || d_used[p.d]) continue;
    t_used[p.t] = d_used[p.d] = true;
    out.emplace_back(p.t, p.d);
  }
  return out;
}

}  // namespace deepscan::testing
