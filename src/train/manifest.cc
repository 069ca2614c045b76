#include "train/manifest.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace deepscan::train {

std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(std::move(field));
      field.clear();
      any = true;
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear();
      field.clear();
      any = false;
    } else {
      field += c;
      any = true;
    }
  }
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

int ParseLabel(const std::string& s) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  if (l == "real" || l == "0") return 0;
  if (l == "fake" || l == "1") return 1;
  return -1;
}

Result<std::vector<LabelledInput>> ReadManifest(const std::string& csv_path) {
  std::ifstream in(csv_path, std::ios::binary);
  if (!in) return Status::IoError("cannot read manifest " + csv_path);
  std::stringstream ss;
  ss << in.rdbuf();
  auto rows = ParseCsv(ss.str());
  if (rows.empty()) return Status::InvalidArgument(csv_path + ": empty manifest");
  const auto& header = rows[0];
  auto column = [&](std::initializer_list<const char*> names) -> int {
    for (const char* n : names) {
      auto it = std::find(header.begin(), header.end(), n);
      if (it != header.end()) return static_cast<int>(it - header.begin());
    }
    return -1;
  };
  int file_col = column({"file", "path"}), label_col = column({"label"}),
      group_col = column({"identity_group", "group"});
  if (file_col < 0 || label_col < 0) return Status::InvalidArgument(csv_path + ": needs 'file' and 'label' columns");
  const fs::path dir = fs::path(csv_path).parent_path();
  std::vector<LabelledInput> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (static_cast<int>(row.size()) <= std::max(file_col, label_col)) continue;
    LabelledInput li;
    li.name = row[file_col];
    li.label = ParseLabel(row[label_col]);
    if (li.label < 0)
      return Status::InvalidArgument(csv_path + ": unknown label '" + row[label_col] + "' on row " +
                                     std::to_string(r + 1));
    li.group = group_col >= 0 && static_cast<int>(row.size()) > group_col && !row[group_col].empty() ? row[group_col]
                                                                                                     : li.name;
    std::error_code ec;
    fs::path p = fs::path(li.name).is_absolute() ? fs::path(li.name) : dir / li.name;
    if (!fs::exists(p, ec)) p = dir.parent_path() / li.name;
    if (!fs::exists(p, ec)) p = fs::path(li.name);  // relative to the working folder
    if (!fs::exists(p, ec)) return Status::NotFound(csv_path + ": listed file not found: " + li.name);
    li.path = p.string();
    out.push_back(std::move(li));
  }
  return out;
}

}  // namespace deepscan::train
