#include "inputs.h"

#include <algorithm>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;

namespace deepscan::tools {
namespace {

const std::set<std::string> kVideoExtensions = {".mp4", ".mov", ".m4v",  ".mkv", ".webm", ".avi", ".mpg", ".mpeg",
                                                ".ts",  ".mts", ".m2ts", ".flv", ".wmv",  ".3gp", ".ogv", ".gif"};

bool HasVideoExtension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return kVideoExtensions.count(ext) > 0;
}

}  // namespace

std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs, bool recursive) {
  std::vector<std::string> out;
  for (const std::string& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      std::vector<std::string> found;
      auto add = [&](const fs::directory_entry& e) {
        if (e.is_regular_file(ec) && HasVideoExtension(e.path())) found.push_back(e.path().string());
      };
      if (recursive) {
        for (const auto& e : fs::recursive_directory_iterator(in, fs::directory_options::skip_permission_denied, ec))
          add(e);
      } else {
        for (const auto& e : fs::directory_iterator(in, ec)) add(e);
      }
      std::sort(found.begin(), found.end());
      if (found.empty()) out.push_back(in);  // reported as "is a directory" with no videos
      out.insert(out.end(), found.begin(), found.end());
    } else {
      out.push_back(in);
    }
  }
  return out;
}

}  // namespace deepscan::tools
