// `deepscan tune`: a hyper-parameter study over `deepscan train`, driven by Optuna (docs/search.md).
//   deepscan tune --space configs/tune-space.json --config configs/train-default.json --store crops.h5
//                 --out runs/tune --trials 20 [--multi-objective] [--storage postgresql://...]
// Everything that can be checked here is checked before any Python runs (the search space against the
// training config's keys and limits, the base config, the objective, the storage URL, the store);
// then this process becomes the driver (src/search/optuna_driver.py under /usr/bin/python3), which
// runs each trial as `deepscan tune-trial` (below) in a child process.
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "flags.h"
#include "search/arch_latency.h"
#include "search/search_space.h"
#include "train/crop_store.h"
#include "train/trainer.h"

namespace deepscan::tools {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

struct TuneArgs {
  std::string space_path, config_path, store, dev_store;
  std::string out = "runs/tune";
  int trials = 20;
  double timeout_s = 0;
  std::string objective = "val_auc";
  bool multi_objective = false;
  std::string sampler;  // "" = tpe, nsga2 with --multi-objective
  std::string pruner;   // "" = median, none with --multi-objective
  int warmup_epochs = 1;
  int startup_trials = 3;
  std::string storage;  // "" = sqlite:///<out>/study.db
  std::string study = "deepscan-tune";
  int64_t seed = -1;
  int epochs = 0;
  int64_t steps_per_epoch = -1;
  int threads = -1;
  int measure_threads = 1;
  std::string measure_device = "auto";
  std::string latency_cache;   // "" = <out>/latency-cache.json
  double max_ms_per_face = 0;  // 0 = no budget
  double connect_timeout_s = 10;
  int heartbeat_s = 60;
  int retries = 2;
  bool keep_checkpoints = false;
  CLI::App* cmd = nullptr;
};

Result<std::string> ReadText(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(std::string("cannot read the ") + what + " " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The path of this executable (the trial runner is this binary).
std::string SelfPath() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("deepscan-train") : self.string();
}

std::string PythonPath() {
  if (const char* p = std::getenv("DEEPSCAN_PYTHON"); p && *p) return p;
  return "/usr/bin/python3";  // Debian's: the one that sees python3-optuna (not a pyenv on PATH)
}

// Metric name -> (needs which store, direction).
Status CheckObjective(const TuneArgs& a, const train::TrainConfig& base) {
  if (a.objective == "val_auc" || a.objective == "selection" || a.objective == "val_log_loss") return Status::Ok();
  if (a.objective == "dev_video_auc") {
    if (base.dev_store.empty()) {
      return Status::InvalidArgument(
          "objective dev_video_auc needs a dev store: --dev-store or \"dev_store\" in --config");
    }
    return Status::Ok();
  }
  if (a.objective == "fake_auc" || a.objective == "fake_video_auc") {
    if (base.val_fakes_store.empty()) {
      return Status::InvalidArgument("objective " + a.objective + " needs \"val_fakes_store\" in --config");
    }
    return Status::Ok();
  }
  return Status::InvalidArgument("unknown objective '" + a.objective +
                                 "' (val_auc, dev_video_auc, selection, fake_auc, fake_video_auc, val_log_loss)");
}

// A storage URL the driver can open: sqlite:///PATH or postgresql://[user[:password]@]host[:port]/db.
Status CheckStorage(const std::string& url) {
  const bool sqlite = url.rfind("sqlite:///", 0) == 0 && url.size() > 10;
  const bool pg = url.rfind("postgresql://", 0) == 0 || url.rfind("postgresql+psycopg2://", 0) == 0;
  if (!sqlite && !pg) {
    return Status::InvalidArgument("unsupported storage URL '" + url +
                                   "': expected sqlite:///PATH or postgresql://user:password@host:port/database");
  }
  if (pg) {
    const std::string rest = url.substr(url.find("://") + 3);
    const size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    if (size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
    const std::string db = slash == std::string::npos ? "" : rest.substr(slash + 1, rest.find('?') - slash - 1);
    if (authority.empty() || authority.front() == ':' || db.empty()) {
      return Status::InvalidArgument("storage URL '" + url +
                                     "' names no host or database: expected "
                                     "postgresql://user:password@host:port/database");
    }
  }
  return Status::Ok();
}

int RunTune(const TuneArgs& a) {
  auto given = [&](const char* name) { return a.cmd->count(name) > 0; };
  // 1. The base config: the file, then the flags that override it.
  train::TrainConfig base;
  if (!a.config_path.empty()) {
    auto text = ReadText(a.config_path, "training config");
    if (!text.ok()) return ReportFailure(text.status());
    auto parsed = train::TrainConfigFromJson(*text);
    if (!parsed.ok()) return ReportFailure(parsed.status());
    base = *parsed;
  }
  if (given("--store")) base.store = a.store;
  if (given("--dev-store")) base.dev_store = a.dev_store;
  if (given("--epochs")) base.epochs = a.epochs;
  if (given("--steps-per-epoch")) base.steps_per_epoch = a.steps_per_epoch;
  if (given("--threads")) base.threads = a.threads;
  base.resume = false;
  base.stop_after_epochs = 0;
  if (base.store.empty())
    return ReportFailure(Status::InvalidArgument("no crop store: give --store or \"store\" in --config"));
  if (base.epochs < 1) return ReportFailure(Status::InvalidArgument("epochs must be >= 1"));
  if (a.trials < 1) return ReportFailure(Status::InvalidArgument("--trials must be >= 1"));
  if (!(a.max_ms_per_face >= 0)) {
    return ReportFailure(Status::InvalidArgument("--max-ms-per-face must be >= 0 (0: no latency budget)"));
  }
  // 2. The search space, against the training config's keys and limits.
  auto space_text = ReadText(a.space_path, "search space");
  if (!space_text.ok()) return ReportFailure(space_text.status());
  auto space = search::ParseSearchSpace(*space_text, base);
  if (!space.ok()) return ReportFailure(Status::InvalidArgument(a.space_path + ": " + space.status().message()));
  // 3. The study's settings.
  if (Status s = CheckObjective(a, base); !s.ok()) return ReportFailure(s);
  const std::string sampler = !a.sampler.empty() ? a.sampler : (a.multi_objective ? "nsga2" : "tpe");
  const std::string pruner = !a.pruner.empty() ? a.pruner : (a.multi_objective ? "none" : "median");
  if (a.multi_objective && pruner != "none") {
    return ReportFailure(Status::InvalidArgument(
        "--pruner " + pruner +
        " needs a single objective (Optuna cannot prune a multi-objective trial); use --pruner none"));
  }
  const std::string storage =
      !a.storage.empty() ? a.storage : "sqlite:///" + (fs::absolute(a.out) / "study.db").lexically_normal().string();
  if (Status s = CheckStorage(storage); !s.ok()) return ReportFailure(s);
  // 4. The store opens (a missing one would fail every trial).
  if (auto r = train::CropStoreReader::Open(base.store, 1); !r.ok()) return ReportFailure(r.status());
  if (!base.dev_store.empty()) {
    if (auto r = train::CropStoreReader::Open(base.dev_store, 1); !r.ok()) return ReportFailure(r.status());
  }
  for (const std::string* path : {&base.init, &base.start, &base.teacher}) {
    if (!path->empty() && !fs::exists(*path)) {
      return ReportFailure(
          Status::NotFound("no such file: " + *path + " (in the base config: every trial would fail)"));
    }
  }
  // 5. The driver and its interpreter.
  const std::string python = PythonPath();
  const std::string driver = HomeDir() + "/src/search/optuna_driver.py";
  if (access(python.c_str(), X_OK) != 0) {
    return ReportFailure(Status::NotSupported(python + " not found: deepscan tune needs Debian's python3 with "
                                                       "python3-optuna (apt-get install python3-optuna)"));
  }
  if (!fs::is_regular_file(driver)) {
    return ReportFailure(Status::NotSupported("the study driver " + driver + " is missing (set DEEPSCAN_HOME)"));
  }
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) return ReportFailure(Status::IoError("cannot create " + a.out + ": " + ec.message()));
  const std::string out = fs::absolute(a.out).lexically_normal().string();
  const std::string latency_cache =
      a.latency_cache.empty() ? out + "/latency-cache.json" : fs::absolute(a.latency_cache).lexically_normal().string();
  json plan = {{"study", a.study},
               {"storage", storage},
               {"out", out},
               {"trials", a.trials},
               {"timeout_s", a.timeout_s},
               {"objective", a.objective},
               {"direction", a.objective == "val_log_loss" ? "minimize" : "maximize"},
               {"multi_objective", a.multi_objective},
               {"sampler", sampler},
               {"pruner", pruner},
               {"warmup_epochs", a.warmup_epochs},
               {"startup_trials", a.startup_trials},
               {"seed", a.seed},
               {"epochs", base.epochs},
               {"measure_threads", a.measure_threads},
               {"measure_device", a.measure_device},
               {"latency_cache", latency_cache},
               {"max_ms_per_face", a.max_ms_per_face},
               {"connect_timeout_s", a.connect_timeout_s},
               {"heartbeat_s", a.heartbeat_s},
               {"retries", a.retries},
               {"keep_checkpoints", a.keep_checkpoints},
               {"trial_command", {SelfPath(), "tune-trial"}},
               {"base_config", json::parse(train::TrainConfigToJson(base))},
               {"space", search::SearchSpaceToJson(*space)}};
  const std::string plan_path = out + "/tune-plan-" + std::to_string(getpid()) + ".json";
  {
    std::ofstream f(plan_path);
    if (!(f << plan.dump(2) << "\n")) return ReportFailure(Status::IoError("cannot write " + plan_path));
  }
  std::fflush(stdout);
  std::vector<std::string> args = {python, driver, "--plan", plan_path};
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  execv(python.c_str(), argv.data());
  return ReportFailure(Status::NotSupported("cannot run " + python + ": " + std::strerror(errno)));
}

struct TuneTrialArgs {
  std::string base_path, params = "{}", out;
  bool resume = false;
  int measure_threads = 1;
  std::string measure_device = "auto";
  std::string latency_cache;
  double max_ms_per_face = 0;
};

// One trial: the base config with the trial's values; first its architecture's ms per face
// (search::ArchitectureLatency: measured once per architecture, cached), then, within the budget,
// trained in this process. JSON lines on stdout (the driver reads them, src/search/optuna_driver.py):
// {"event": "latency", ...}, then {"event": "over_budget", ...} and exit 0 without training, or one
// {"event": "epoch", ...} per epoch and {"event": "done", ...} at the end.
int RunTuneTrial(const TuneTrialArgs& a) {
  // The driver owns this process: if it dies (killed study), so does the trial.
  const pid_t driver = getppid();
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != driver) return ExitCodeFor(Code::kInternal);  // it died before the line above
  auto text = ReadText(a.base_path, "base config");
  if (!text.ok()) return ReportFailure(text.status());
  auto base = train::TrainConfigFromJson(*text);
  if (!base.ok()) return ReportFailure(base.status());
  json values;
  try {
    values = json::parse(a.params);
  } catch (const json::exception& e) {
    return ReportFailure(Status::InvalidArgument(std::string("--params does not parse: ") + e.what()));
  }
  auto c = search::TrialConfig(*base, values, a.out);
  if (!c.ok()) return ReportFailure(c.status());
  std::error_code ec;
  fs::create_directories(a.out, ec);
  {
    std::ofstream f(a.out + "/config.json");
    if (!(f << train::TrainConfigToJson(*c) << "\n"))
      return ReportFailure(Status::IoError("cannot write " + a.out + "/config.json"));
  }
  c->resume = a.resume && fs::exists(a.out + "/last.pt");
  json latency;
  if (a.measure_threads > 0) {
    search::LatencyOptions lo;
    lo.cache_path = a.latency_cache;
    lo.device = a.measure_device;
    lo.threads = a.measure_threads;
    auto l = search::ArchitectureLatency(c->model, lo);
    if (!l.ok()) return ReportFailure(l.status());
    latency = {{"event", "latency"},
               {"ms_per_face", l->ms_per_face},
               {"p90_ms_per_face", l->p90_ms},
               {"measure_threads", a.measure_threads},
               {"device", l->device},
               {"cached", l->cached},
               {"arch", l->label},
               {"arch_key", search::ArchitectureKey(c->model)}};
    std::printf("%s\n", latency.dump().c_str());
    std::fflush(stdout);
    if (a.max_ms_per_face > 0 && l->ms_per_face > a.max_ms_per_face) {
      std::printf(
          "%s\n",
          json({{"event", "over_budget"}, {"ms_per_face", l->ms_per_face}, {"max_ms_per_face", a.max_ms_per_face}})
              .dump()
              .c_str());
      std::fflush(stdout);
      return 0;
    }
  }
  train::TrainCallbacks cb;
  cb.on_epoch = [&](const train::EpochStats& s) {
    json line = train::EpochStatsToJson(s);
    line["event"] = "epoch";
    std::printf("%s\n", line.dump().c_str());
    std::fflush(stdout);
  };
  auto r = train::Train(*c, cb);
  if (!r.ok()) return ReportFailure(r.status());
  json done = {{"event", "done"}, {"best_epoch", r->best_epoch}, {"onnx", r->onnx_path}};
  done["best"] = train::EpochStatsToJson(r->history.at(r->best_epoch));
  if (!latency.is_null()) {
    for (const char* k : {"ms_per_face", "p90_ms_per_face", "measure_threads"}) done[k] = latency[k];
  }
  std::printf("%s\n", done.dump().c_str());
  std::fflush(stdout);
  return 0;
}

}  // namespace

RunFn AddTuneCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("tune",
                                      "search training hyper-parameters with Optuna (pruning, resumable, "
                                      "one study across machines on PostgreSQL)");
  cmd->fallthrough();
  auto a = std::make_shared<TuneArgs>();
  a->cmd = cmd;
  cmd->add_option("--space", a->space_path, "search space JSON (configs/tune-space.json; docs/search.md)")->required();
  cmd->add_option("--config", a->config_path, "base training config every trial starts from (flags override it)");
  cmd->add_option("--store", a->store, "HDF5 crop store of real faces");
  cmd->add_option("--dev-store", a->dev_store, "crop store of the face-swap dev set (for --objective dev_video_auc)");
  cmd->add_option("--out", a->out, "study folder: trials/<n>/, study.db, best-config.json, the plot")
      ->capture_default_str();
  cmd->add_option("--trials", a->trials, "finished (complete or pruned) trials the study should have")
      ->capture_default_str();
  cmd->add_option("--timeout", a->timeout_s, "stop starting trials after this many seconds (0 = no limit)");
  cmd->add_option("--objective", a->objective,
                  "val_auc (held-out pseudo-fakes) | dev_video_auc | selection | fake_auc | fake_video_auc | "
                  "val_log_loss (minimised)")
      ->capture_default_str();
  cmd->add_flag("--multi-objective", a->multi_objective,
                "two objectives: the --objective and the ms per face of the trial's model measured here (NSGA-II)");
  cmd->add_option("--sampler", a->sampler, "tpe (default) | nsga2 (default with --multi-objective) | random")
      ->check(CLI::IsMember({"tpe", "nsga2", "random"}));
  cmd->add_option("--pruner", a->pruner, "median (default) | sha (successive halving) | hyperband | none")
      ->check(CLI::IsMember({"median", "sha", "hyperband", "none"}));
  cmd->add_option("--warmup-epochs", a->warmup_epochs, "median: epochs a trial runs before it may be pruned")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--startup-trials", a->startup_trials, "median: trials finished before any is pruned")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--storage", a->storage,
                  "Optuna storage: sqlite:///PATH (default <out>/study.db) or postgresql://user:pw@host:port/db "
                  "(several machines, one study)");
  cmd->add_option("--study", a->study, "study name in the storage")->capture_default_str();
  cmd->add_option("--seed", a->seed, "sampler seed (give each worker its own; default: random)");
  cmd->add_option("--epochs", a->epochs, "epochs per trial (the pruners' steps)");
  cmd->add_option("--steps-per-epoch", a->steps_per_epoch, "steps per epoch of each trial");
  cmd->add_option("--threads", a->threads, "torch threads per trial (0 = all cores)");
  cmd->add_option("--measure-threads", a->measure_threads, "ONNX Runtime threads for the ms-per-face measurement")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--measure-device", a->measure_device,
                  "where the ms per face is measured: cpu | cuda | auto (CUDA when usable, else the CPU)")
      ->capture_default_str()
      ->check(CLI::IsMember({"cpu", "cuda", "auto"}));
  cmd->add_option("--latency-cache", a->latency_cache,
                  "file caching each architecture's ms per face (keyed by architecture, backend, threads, CPU); "
                  "default <out>/latency-cache.json");
  cmd->add_option("--max-ms-per-face", a->max_ms_per_face,
                  "latency budget: an architecture measured slower is pruned before it trains (0 = none)")
      ->capture_default_str();
  cmd->add_option("--connect-timeout", a->connect_timeout_s, "seconds to reach a PostgreSQL storage")
      ->capture_default_str();
  cmd->add_option("--heartbeat", a->heartbeat_s,
                  "seconds between a running trial's heartbeats; a trial silent for 2x that (a dead machine) is "
                  "failed and retried by the next worker")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--retries", a->retries, "times a trial killed with its worker is retried")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--keep-checkpoints", a->keep_checkpoints,
                "keep every trial's last.pt and optimizer.pt (and a pruned trial's best.pt); by default they are "
                "deleted once the trial ends, as only a killed trial is ever continued");
  return [cmd, a]() -> int { return cmd->parsed() ? RunTune(*a) : -1; };
}

RunFn AddTuneTrialCommand(CLI::App* app) {
  CLI::App* cmd = app->add_subcommand("tune-trial", "one trial of a tune study (run by the study driver)");
  cmd->group("");  // internal: not listed in --help
  auto a = std::make_shared<TuneTrialArgs>();
  cmd->add_option("--base", a->base_path, "full training config JSON")->required();
  cmd->add_option("--params", a->params, "the trial's values, JSON {NAME: value}");
  cmd->add_option("--out", a->out, "the trial's folder")->required();
  cmd->add_flag("--resume", a->resume, "continue from <out>/last.pt when it exists");
  cmd->add_option("--measure-threads", a->measure_threads, "threads for the ms-per-face measurement (0 = skip)");
  cmd->add_option("--measure-device", a->measure_device, "cpu | cuda | auto");
  cmd->add_option("--latency-cache", a->latency_cache, "the per-architecture latency cache file");
  cmd->add_option("--max-ms-per-face", a->max_ms_per_face, "stop before training above this ms per face (0 = none)");
  return [cmd, a]() -> int { return cmd->parsed() ? RunTuneTrial(*a) : -1; };
}

}  // namespace deepscan::tools
