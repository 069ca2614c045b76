#include "search/search_space.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

namespace deepscan::search {
namespace {

using nlohmann::json;
constexpr double kInf = std::numeric_limits<double>::infinity();

// What a tunable key accepts: [lo, hi], either end open.
struct Limit {
  double lo = -kInf, hi = kInf;
  bool lo_open = false, hi_open = false;
  std::vector<std::string> strings;  // string keys: the accepted values ("" = the trainer checks)
};

// [lo, hi], an open end where asked.
Limit Range(double lo, double hi, bool lo_open = false, bool hi_open = false) {
  Limit l;
  l.lo = lo;
  l.hi = hi;
  l.lo_open = lo_open;
  l.hi_open = hi_open;
  return l;
}

// Keys of the training config that a study may not search, and why.
const std::map<std::string, std::string>& NotTunable() {
  static const std::map<std::string, std::string> m = {
      {"store", "a path: set it in the base config or with --store"},
      {"out_dir", "each trial's folder is the study's (<out>/trials/<number>)"},
      {"val_fakes_store", "a path: set it in the base config"},
      {"dev_store", "a path: set it in the base config or with --dev-store"},
      {"init", "a path: set it in the base config"},
      {"start", "a path: set it in the base config"},
      {"teacher", "a path: set it in the base config"},
      {"epochs", "the budget (the pruners' steps are epochs): set it in the base config or with --epochs"},
      {"steps_per_epoch", "the budget: set it in the base config or with --steps-per-epoch"},
      {"stop_after_epochs", "the budget: a trial always runs to its last epoch unless pruned"},
      {"seed", "every trial trains on the same split and draws: set it in the base config"},
      {"threads", "a machine setting: set it in the base config or with --threads"},
      {"val_fraction", "it changes the validation set, so trials would not be comparable"},
      {"val_pairs", "it changes the validation set, so trials would not be comparable"},
      {"model_name", "metadata, not a hyper-parameter"},
      {"model_version", "metadata, not a hyper-parameter"},
      {"model.channels", "pruned channel counts come from `deepscan prune`"},
      {"model.ranks", "factorised ranks come from `deepscan lowrank`"},
      {"model.nas", "search its entries: model.nas.FIELD.STAGE (FIELD depth, kernel, expand, se or act; STAGE 0-4)"},
  };
  return m;
}

// The value range each tunable key accepts. A key missing here takes any value of its type.
const std::map<std::string, Limit>& Limits() {
  static const std::map<std::string, Limit> m = [] {
    std::map<std::string, Limit> l;
    const Limit prob = Range(0, 1);
    for (const char* k :
         {"cross_blend_p", "h264_p", "jpeg_p", "degrade_p", "degrade_heavy_p", "hull_p", "distill_alpha", "sam_rho"}) {
      l[k] = prob;
    }
    l["lr"] = Range(0, 10, true);
    l["weight_decay"] = Range(0, 10);
    l["momentum"] = Range(0, 1, false, true);
    l["ema_decay"] = Range(0, 1, false, true);
    l["warmup_steps"] = Range(0, 1e9);
    l["mask_weight"] = Range(0, 100);
    l["pairs_per_batch"] = Range(1, 4096);
    l["distill_temperature"] = Range(0, 100, true);
    l["optimizer"].strings = {"adamw", "sgd"};
    l["model.width"] = Range(0.1, 4, true);
    l["model.input_size"] = Range(32, 1024);
    l["model.dropout"] = Range(0, 1, false, true);
    l["model.drop_path"] = Range(0, 1, false, true);
    l["model.mask_stride"] = Range(8, 16);
    l["model.arch"] = {};  // the zoo's parser checks the names
    for (int i = 0; i < train::kNasStages; ++i) {
      const std::string stage = "." + std::to_string(i);
      l["model.nas.depth" + stage] = Range(1, 6);
      l["model.nas.kernel" + stage] = Range(3, 7);
      l["model.nas.expand" + stage] = Range(1, 8);
      l["model.nas.act" + stage].strings = {"relu", "hswish"};
    }
    return l;
  }();
  return m;
}

// NasSpec{}'s fields as JSON: {"depth": [...], "kernel": [...], ...}.
json NasDefaults() {
  train::ModelSpec nas;
  nas.arch = "mobilenetv3_nas";
  return json::parse(train::ModelSpecToJson(nas))["nas"];
}

bool IsNasName(const std::string& name) { return name.rfind("model.nas.", 0) == 0; }

// Every key of the training config JSON with its default value ("model.KEY" for the model's).
const std::map<std::string, json>& ConfigKeys() {
  static const std::map<std::string, json> m = [] {
    std::map<std::string, json> keys;
    const json j = json::parse(train::TrainConfigToJson(train::TrainConfig{}));
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "model") {
        for (auto mt = it.value().begin(); mt != it.value().end(); ++mt) keys["model." + mt.key()] = mt.value();
      } else {
        keys[it.key()] = it.value();
      }
    }
    keys.emplace("model.channels", json::object());
    keys.emplace("model.ranks", json::object());
    keys.emplace("model.nas", json::object());
    // The architecture search's choices (arch mobilenetv3_nas), one key per field and stage.
    const json nas = NasDefaults();
    for (auto f = nas.begin(); f != nas.end(); ++f) {
      for (size_t i = 0; i < f.value().size(); ++i)
        keys["model.nas." + f.key() + "." + std::to_string(i)] = f.value()[i];
    }
    return keys;
  }();
  return m;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string Num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// Refuses a name that is not a tunable config key, saying what is.
Status CheckName(const std::string& name) {
  if (auto nt = NotTunable().find(name); nt != NotTunable().end()) {
    return Status::InvalidArgument("parameter '" + name + "' cannot be searched: " + nt->second);
  }
  if (ConfigKeys().count(name) == 0 && IsNasName(name)) {
    return Status::InvalidArgument("unknown architecture parameter '" + name +
                                   "': expected model.nas.FIELD.STAGE, FIELD one of depth, kernel, expand, se, act, "
                                   "STAGE 0-" +
                                   std::to_string(train::kNasStages - 1));
  }
  if (ConfigKeys().count(name) == 0) {
    std::vector<std::string> keys;
    for (const std::string& k : TunableKeys()) {
      if (!IsNasName(k)) keys.push_back(k);
    }
    keys.push_back("model.nas.FIELD.STAGE");
    return Status::InvalidArgument("unknown parameter '" + name +
                                   "': not a training config key (tunable: " + Join(keys) + ")");
  }
  return Status::Ok();
}

Status CheckInLimit(const std::string& name, double v) {
  auto it = Limits().find(name);
  if (it == Limits().end()) return Status::Ok();
  const Limit& l = it->second;
  const bool low_ok = l.lo_open ? v > l.lo : v >= l.lo;
  const bool high_ok = l.hi_open ? v < l.hi : v <= l.hi;
  if (low_ok && high_ok) return Status::Ok();
  return Status::InvalidArgument("parameter '" + name + "': " + Num(v) + " is outside what it accepts, " +
                                 (l.lo_open ? "(" : "[") + Num(l.lo) + ", " + Num(l.hi) + (l.hi_open ? ")" : "]"));
}

// Sets `values` into the config JSON `j` ("model.KEY" into j["model"]).
void SetValues(json* j, const json& values) {
  for (auto it = values.begin(); it != values.end(); ++it) {
    const std::string& k = it.key();
    if (IsNasName(k)) {  // model.nas.FIELD.STAGE: one entry of the spec's "nas" arrays
      json& model = (*j)["model"];
      if (!model.contains("nas")) model["nas"] = NasDefaults();  // another arch: the zoo's parser says so
      const std::string rest = k.substr(10);
      const size_t dot = rest.rfind('.');
      model["nas"][rest.substr(0, dot)][std::stoul(rest.substr(dot + 1))] = it.value();
    } else if (k.rfind("model.", 0) == 0) {
      (*j)["model"][k.substr(6)] = it.value();
    } else {
      (*j)[k] = it.value();
    }
  }
}

Result<ParamSpec> ParseParam(const std::string& name, const json& s) {
  RETURN_IF_ERROR(CheckName(name));
  const std::string where = "parameter '" + name + "': ";
  if (!s.is_object()) return Status::InvalidArgument(where + "its spec must be an object with a \"type\"");
  static const std::set<std::string> kSpecKeys = {"type", "low", "high", "log", "step", "choices"};
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (kSpecKeys.count(it.key()) == 0) {
      return Status::InvalidArgument(where + "unknown field '" + it.key() + "' (type, low, high, log, step, choices)");
    }
  }
  if (!s.contains("type") || !s["type"].is_string()) {
    return Status::InvalidArgument(where + "needs \"type\": \"float\", \"int\" or \"categorical\"");
  }
  const json& def = ConfigKeys().at(name);
  const std::string type = s["type"];
  ParamSpec p;
  p.name = name;
  if (type == "categorical") {
    p.type = ParamType::kCategorical;
    if (s.contains("low") || s.contains("high") || s.contains("log") || s.contains("step")) {
      return Status::InvalidArgument(where + "a categorical takes only \"choices\"");
    }
    if (!s.contains("choices") || !s["choices"].is_array() || s["choices"].empty()) {
      return Status::InvalidArgument(where + "needs a non-empty \"choices\" array");
    }
    p.choices = s["choices"];
    std::set<std::string> seen;
    for (const json& c : p.choices) {
      const bool fits = (def.is_boolean() && c.is_boolean()) || (def.is_string() && c.is_string()) ||
                        (def.is_number_float() && c.is_number()) || (def.is_number_integer() && c.is_number_integer());
      if (!fits) {
        return Status::InvalidArgument(where + "choice " + c.dump() + " is not a " +
                                       (def.is_boolean()        ? "boolean"
                                        : def.is_string()       ? "string"
                                        : def.is_number_float() ? "number"
                                                                : "whole number"));
      }
      if (!seen.insert(c.dump()).second) return Status::InvalidArgument(where + "choice " + c.dump() + " repeats");
      if (c.is_number()) RETURN_IF_ERROR(CheckInLimit(name, c.get<double>()));
      if (c.is_string()) {
        auto lim = Limits().find(name);
        if (lim != Limits().end() && !lim->second.strings.empty() &&
            std::find(lim->second.strings.begin(), lim->second.strings.end(), c.get<std::string>()) ==
                lim->second.strings.end()) {
          return Status::InvalidArgument(where + "choice " + c.dump() + " is not one of " + Join(lim->second.strings));
        }
      }
    }
    return p;
  }
  if (type != "float" && type != "int") {
    return Status::InvalidArgument(where + "unknown type '" + type + "' (float, int, categorical)");
  }
  p.type = type == "float" ? ParamType::kFloat : ParamType::kInt;
  if (p.type == ParamType::kFloat && !def.is_number_float()) {
    return Status::InvalidArgument(
        "parameter '" + name + "' is " +
        (def.is_number() ? "a whole number: use \"int\"" : "not a number: use \"categorical\""));
  }
  if (p.type == ParamType::kInt && !def.is_number_integer()) {
    return Status::InvalidArgument(
        "parameter '" + name + "' is " +
        (def.is_number() ? "a real number: use \"float\"" : "not a number: use \"categorical\""));
  }
  if (s.contains("choices")) return Status::InvalidArgument(where + "\"choices\" belong to a categorical");
  if (!s.contains("low") || !s.contains("high") || !s["low"].is_number() || !s["high"].is_number()) {
    return Status::InvalidArgument(where + "needs numeric \"low\" and \"high\"");
  }
  p.low = s["low"];
  p.high = s["high"];
  if (p.type == ParamType::kInt && (!s["low"].is_number_integer() || !s["high"].is_number_integer())) {
    return Status::InvalidArgument(where + "an int's low and high must be whole numbers");
  }
  if (!std::isfinite(p.low) || !std::isfinite(p.high))
    return Status::InvalidArgument(where + "low and high must be finite");
  if (!(p.low < p.high)) {
    return Status::InvalidArgument(where + "low (" + Num(p.low) + ") must be below high (" + Num(p.high) + ")");
  }
  if (s.contains("log")) {
    if (!s["log"].is_boolean()) return Status::InvalidArgument(where + "\"log\" must be true or false");
    p.log = s["log"];
  }
  if (p.log && p.low <= 0)
    return Status::InvalidArgument(where + "a log scale needs low > 0 (low is " + Num(p.low) + ")");
  p.step = p.type == ParamType::kInt ? 1 : 0;
  if (s.contains("step")) {
    if (!s["step"].is_number() || !(s["step"].get<double>() > 0)) {
      return Status::InvalidArgument(where + "\"step\" must be a number > 0");
    }
    p.step = s["step"];
    if (p.type == ParamType::kInt && !s["step"].is_number_integer()) {
      return Status::InvalidArgument(where + "an int's step must be a whole number");
    }
    if (p.log && p.step != 1) return Status::InvalidArgument(where + "a log scale takes no step (Optuna's rule)");
  }
  RETURN_IF_ERROR(CheckInLimit(name, p.low));
  RETURN_IF_ERROR(CheckInLimit(name, p.high));
  if (name.rfind("model.nas.kernel.", 0) == 0 &&
      (static_cast<int64_t>(p.low) % 2 == 0 || static_cast<int64_t>(p.step) % 2 != 0)) {
    return Status::InvalidArgument(where + "kernels are odd (3, 5, 7): use an odd low and step 2, or a categorical");
  }
  return p;
}

// The values that stand for a parameter's range when checking it against the trainer's parser.
std::vector<json> Ends(const ParamSpec& p) {
  if (p.type == ParamType::kCategorical) return {p.choices.begin(), p.choices.end()};
  if (p.type == ParamType::kInt) return {json(static_cast<int64_t>(p.low)), json(static_cast<int64_t>(p.high))};
  return {json(p.low), json(p.high)};
}

}  // namespace

std::vector<std::string> TunableKeys() {
  std::vector<std::string> keys;
  for (const auto& [k, v] : ConfigKeys()) {
    if (NotTunable().count(k) == 0) keys.push_back(k);
  }
  return keys;
}

Result<SearchSpace> ParseSearchSpace(const std::string& json_text, const train::TrainConfig& base) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("search space does not parse: ") + e.what());
  }
  if (!j.is_object() || !j.contains("parameters") || !j["parameters"].is_object()) {
    return Status::InvalidArgument("search space must be a JSON object {\"parameters\": {NAME: SPEC, ...}}");
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "parameters" && it.key() != "comment") {
      return Status::InvalidArgument("search space: unknown top-level key '" + it.key() + "' (parameters, comment)");
    }
  }
  if (j["parameters"].empty()) return Status::InvalidArgument("search space: no parameters");
  SearchSpace space;
  for (auto it = j["parameters"].begin(); it != j["parameters"].end(); ++it) {
    ASSIGN_OR_RETURN(ParamSpec p, ParseParam(it.key(), it.value()));
    space.params.push_back(std::move(p));
  }
  std::sort(space.params.begin(), space.params.end(),
            [](const ParamSpec& a, const ParamSpec& b) { return a.name < b.name; });
  // The architecture's choices are the search space of arch mobilenetv3_nas, not of another arch.
  for (const ParamSpec& p : space.params) {
    if (!IsNasName(p.name)) continue;
    if (base.model.arch != "mobilenetv3_nas") {
      return Status::InvalidArgument("parameter '" + p.name +
                                     "' searches arch mobilenetv3_nas, but the base config's is " + base.model.arch +
                                     ": set \"model\": {\"arch\": \"mobilenetv3_nas\", ...} in --config");
    }
    if (std::any_of(space.params.begin(), space.params.end(),
                    [](const ParamSpec& q) { return q.name == "model.arch"; })) {
      return Status::InvalidArgument("parameter '" + p.name +
                                     "' cannot be searched with model.arch: it belongs to arch mobilenetv3_nas only");
    }
  }
  // Each end of each range on top of the base config must still be a config the trainer reads.
  for (const ParamSpec& p : space.params) {
    for (const json& v : Ends(p)) {
      auto c = TrialConfig(base, json{{p.name, v}}, base.out_dir);
      if (!c.ok()) {
        return Status::InvalidArgument("parameter '" + p.name + "' = " + v.dump() + ": " + c.status().message());
      }
    }
  }
  return space;
}

json SearchSpaceToJson(const SearchSpace& space) {
  json out = json::array();
  for (const ParamSpec& p : space.params) {
    if (p.type == ParamType::kCategorical) {
      out.push_back({{"name", p.name}, {"type", "categorical"}, {"choices", p.choices}});
    } else {
      json e = {
          {"name", p.name}, {"type", p.type == ParamType::kFloat ? "float" : "int"}, {"log", p.log}, {"step", p.step}};
      if (p.type == ParamType::kInt) {
        e["low"] = static_cast<int64_t>(p.low);
        e["high"] = static_cast<int64_t>(p.high);
      } else {
        e["low"] = p.low;
        e["high"] = p.high;
      }
      out.push_back(e);
    }
  }
  return out;
}

Result<train::TrainConfig> TrialConfig(const train::TrainConfig& base, const json& values, const std::string& out_dir) {
  if (!values.is_object()) return Status::InvalidArgument("trial values must be a JSON object {NAME: value}");
  for (auto it = values.begin(); it != values.end(); ++it) RETURN_IF_ERROR(CheckName(it.key()));
  json j = json::parse(train::TrainConfigToJson(base));
  SetValues(&j, values);
  j["out_dir"] = out_dir;
  auto c = train::TrainConfigFromJson(j.dump());
  if (!c.ok()) return Status::InvalidArgument(c.status().message());
  return c;
}

}  // namespace deepscan::search
