// search::SearchSpace: the hyper-parameters a `deepscan tune` study searches, and how one trial's
// values become a training config (docs/search.md).
//
// Basic usage:
//   ASSIGN_OR_RETURN(SearchSpace space, ParseSearchSpace(space_json_text, base_config));
//   // ... a sampler (Optuna, src/search/optuna_driver.py) draws values within `space.params` ...
//   ASSIGN_OR_RETURN(train::TrainConfig c, TrialConfig(base_config, values_json, "runs/tune/trials/7"));
//
// In:  a JSON object {"parameters": {NAME: SPEC, ...}}, NAME a key of the training config JSON
//      (train::TrainConfigToJson; keys of "model" as "model.KEY"), SPEC one of
//        {"type": "float", "low": A, "high": B, "log": false}      (log: sampled on a log scale, A > 0)
//        {"type": "int", "low": A, "high": B, "step": 1, "log": false}
//        {"type": "categorical", "choices": [V, ...]}              (numbers, booleans or strings)
// Out: the validated space (every parameter, sorted by name), ready for the sampler; for a trial,
//      the base config with the trial's values set, which `deepscan train --config` reads.
// Checks, all before anything trains: the JSON parses; each NAME is a tunable key (not a path, a
//      seed, the epoch budget or the thread count: those belong to the base config and the study);
//      the type fits the key's (a float key takes float or numeric categorical, an int key int, a
//      bool or string key categorical); low < high, log only with low > 0, step > 0; the range
//      lies inside what the key accepts (probabilities in [0, 1], lr > 0, ...); and the base config
//      with each end of each range (each choice) still parses as a training config (so the model
//      spec's own limits, e.g. input_size in [32, 1024], are checked by the trainer's parser).
// Errors: kInvalidArgument, with the parameter's name in the message. Pure functions, any thread.
#ifndef DEEPSCAN_SEARCH_SEARCH_SPACE_H_
#define DEEPSCAN_SEARCH_SEARCH_SPACE_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "deepscan/status.h"
#include "train/trainer.h"

namespace deepscan::search {

enum class ParamType { kFloat, kInt, kCategorical };

struct ParamSpec {
  std::string name;  // training config key; "model.KEY" for the model spec's keys
  ParamType type = ParamType::kFloat;
  double low = 0, high = 0;  // kFloat, kInt (inclusive)
  bool log = false;          // kFloat, kInt: sample log-uniformly
  double step = 0;           // kInt: > 0 (default 1); kFloat: 0 = continuous, else a grid from low
  nlohmann::json choices;    // kCategorical: a non-empty array of numbers, booleans or strings
};

struct SearchSpace {
  std::vector<ParamSpec> params;  // sorted by name, names unique
};

// Parses and validates `json_text` against the keys and limits of the training config; `base` is
// the config every trial starts from (the range ends are checked on top of it).
// Errors: kInvalidArgument ("search space does not parse: ...", "unknown parameter 'x' ...",
// "parameter 'lr': low must be below high", ...).
Result<SearchSpace> ParseSearchSpace(const std::string& json_text, const train::TrainConfig& base);

// The space as the driver reads it: [{"name", "type": "float"|"int"|"categorical", "low", "high",
// "log", "step"} or {"name", "type", "choices"}, ...].
nlohmann::json SearchSpaceToJson(const SearchSpace& space);

// `base` with each of `values` ({NAME: value}) set and out_dir = `out_dir`, parsed back through
// train::TrainConfigFromJson (so the result is exactly what `deepscan train --config` reads).
// Errors: kInvalidArgument (a name that is not a config key, a value the parser refuses).
Result<train::TrainConfig> TrialConfig(const train::TrainConfig& base, const nlohmann::json& values,
                                       const std::string& out_dir);

// The tunable keys (sorted), for messages and docs.
std::vector<std::string> TunableKeys();

}  // namespace deepscan::search

#endif  // DEEPSCAN_SEARCH_SEARCH_SPACE_H_
