#include "report/model_card.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace deepscan::report {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr size_t kMaxCardBytes = 1 << 20;  // a card is a page of text; anything larger is not one

bool ReadSmallFile(const fs::path& path, std::string* out) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec) || fs::file_size(path, ec) > kMaxCardBytes || ec) return false;
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  if (!in || !(ss << in.rdbuf())) return false;
  *out = ss.str();
  return true;
}

std::string Trim(const std::string& s) {
  const size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
}

std::string Number(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

// The lines of the "## <heading...>" section of `lines` (up to the next "## "), heading excluded.
std::vector<std::string> Section(const std::vector<std::string>& lines, const std::string& heading) {
  std::vector<std::string> out;
  bool in = false;
  for (const std::string& line : lines) {
    if (line.rfind("## ", 0) == 0) {
      if (in) break;
      in = line.compare(3, heading.size(), heading) == 0;
      continue;
    }
    if (in) out.push_back(line);
  }
  return out;
}

// Paragraphs (blank-line separated) of a section, or its "- " items when `items`; continuation
// lines join their item.
std::vector<std::string> Blocks(const std::vector<std::string>& lines, bool items) {
  std::vector<std::string> out;
  bool open = false;
  for (const std::string& raw : lines) {
    const std::string line = Trim(raw);
    if (line.empty()) {
      open = false;
      continue;
    }
    if (items) {
      if (line.rfind("- ", 0) == 0) {
        out.push_back(line.substr(2));
        open = true;
      } else if (open) {
        out.back() += " " + line;
      }
    } else if (open) {
      out.back() += " " + line;
    } else {
      out.push_back(line);
      open = true;
    }
  }
  return out;
}

void AddFacts(const fs::path& metadata, ModelCard* card) {
  std::string text;
  if (!ReadSmallFile(metadata, &text)) return;
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return;
  auto num = [](const json& o, const char* key) -> const json* {
    auto it = o.find(key);
    return it != o.end() && it->is_number() ? &*it : nullptr;
  };
  auto str = [](const json& o, const char* key) -> std::string {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  if (auto it = j.find("architecture"); it != j.end() && it->is_object() && !str(*it, "arch").empty()) {
    card->facts.emplace_back("architecture", str(*it, "arch"));
  }
  if (const json* n = num(j, "input_size")) {
    card->facts.emplace_back("input", Number(n->get<double>()) + " × " + Number(n->get<double>()) + " face crop");
  }
  if (auto it = j.find("calibration"); it != j.end() && it->is_object() && !str(*it, "method").empty()) {
    std::string c = str(*it, "method");
    if (const json* a = num(*it, "a"), *b = num(*it, "b"); a && b && c != "none") {
      c += ": P(fake) = sigmoid(" + Number(a->get<double>()) + " z + " + Number(b->get<double>()) + ")";
    }
    card->facts.emplace_back("calibration", c);
  }
  if (auto it = j.find("threshold_calibration"); it != j.end() && it->is_object()) {
    std::string t = str(*it, "method");
    if (const json* q = num(*it, "quantile")) t += " " + Number(q->get<double>());
    if (const json* c = num(*it, "crops")) t += ", " + Number(c->get<double>()) + " crops";
    if (const json* g = num(*it, "groups")) t += " of " + Number(g->get<double>()) + " identity groups";
    if (!t.empty()) card->facts.emplace_back("threshold calibration", t);
  }
}

}  // namespace

ModelCard LoadModelCard(const std::string& model_path, const std::string& model_name) {
  ModelCard card;
  if (model_path.empty()) return card;
  const fs::path model(model_path);
  fs::path metadata = model;
  AddFacts(metadata.replace_extension(".json"), &card);
  fs::path own = model;
  for (const fs::path& candidate : {own.replace_extension(".md"), model.parent_path() / "MODEL_CARD.md"}) {
    std::string text;
    if (!ReadSmallFile(candidate, &text)) continue;
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::string title;
    for (const std::string& line : lines) {
      if (line.rfind("# ", 0) == 0) {
        title = Trim(line.substr(2));
        break;
      }
    }
    if (model_name.empty() || title.find(model_name) == std::string::npos) continue;  // another model's card
    card.source = candidate.string();
    card.title = title;
    card.intended_use = Blocks(Section(lines, "Intended use"), /*items=*/false);
    card.limits = Blocks(Section(lines, "Known limits"), /*items=*/true);
    break;
  }
  return card;
}

}  // namespace deepscan::report
