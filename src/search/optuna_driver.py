#!/usr/bin/python3
"""The study driver of `deepscan tune` (docs/search.md). Run by `deepscan tune`, never by hand.

In:  --plan FILE, written by tools/deepscan/tune_command.cc after it validated everything it can
     (search space, base config, objective, storage URL, crop store): the study's settings, the
     base training config, the search space, and the trial command (`deepscan-train tune-trial`).
Out: trials in the Optuna storage (SQLite file or PostgreSQL); <out>/trials/<number>/ per trial
     (config.json, the trainer's files, trial.log); at the end <out>/best-config.json (a full config
     `deepscan train --config` reads), <out>/study-summary.json, <out>/history.png (one objective)
     or <out>/pareto.png (accuracy vs ms per face), <out>/pareto/trial-<n>.json for the front.
How: each trial is a child process that first reports its architecture's ms per face (measured once
     per architecture on the target backend and cached in --latency-cache; a trial over
     --max-ms-per-face is pruned there, untrained), then trains and prints one JSON line per epoch; the value is
     reported to Optuna (trial.report) and the pruner asked (trial.should_prune); a pruned trial's
     child is stopped. The study is resumable: rerunning the same command continues until it holds
     --trials finished (complete or pruned) trials. A trial left RUNNING by a killed worker is failed
     and retried: at once when the dead worker was on this machine (its pid is gone), else when its
     heartbeat is older than the grace period (Optuna's RDBStorage heartbeat). A retried trial
     continues from the killed trial's last finished epoch (the trainer's last.pt) when it can.
Exit codes (docs/exit-codes.md): 0 done; 2 the study exists with another space or objective;
     21 python3-optuna / python3-psycopg2 missing; 22 the SQLite file cannot be opened or written;
     23 the PostgreSQL storage cannot be reached; 128+n after signal n (the running trial is retried
     by the next run); when 3 trials in a row fail on this worker, the last trainer's exit code (70 when
     it died of a signal).
Run with /usr/bin/python3 (Debian's python3-optuna 3.1); single-threaded apart from Optuna's heartbeat.
"""

import argparse
import copy
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

EXIT_USAGE = 2
EXIT_NOT_SUPPORTED = 21
EXIT_IO = 22
EXIT_UNREACHABLE = 23
EXIT_INTERNAL = 70


def fail(code, message):
    print("deepscan: " + message, file=sys.stderr)
    sys.exit(code)


def masked(url):
    """The URL with its password hidden, for messages."""
    return re.sub(r"://([^:/@]*):[^@/]*@", r"://\1:***@", url)


def first_line(e):
    text = str(getattr(e, "orig", None) or e).strip()
    return text.splitlines()[0] if text else type(e).__name__


try:
    import warnings

    import optuna
    from optuna.trial import TrialState

    # RetryFailedTrialCallback, fail_stale_trials and Trial.system_attrs are marked experimental or
    # deprecated in 3.1 (they are the documented way to retry trials of dead workers there).
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", category=FutureWarning, module="optuna")
    warnings.filterwarnings("ignore", category=FutureWarning, message=".*system_attrs.*")
except ImportError:
    fail(EXIT_NOT_SUPPORTED, "python3-optuna is not installed for " + sys.executable +
         " (apt-get install python3-optuna)")


class TrialFailed(Exception):
    """The trainer of a trial exited with an error (the trial is FAIL, the study goes on)."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


class Driver:
    def __init__(self, plan):
        self.plan = plan
        self.out = plan["out"]
        self.objective_name = plan["objective"]
        self.multi = plan["multi_objective"]
        self.directions = [plan["direction"]] + (["minimize"] if self.multi else [])
        # The machine's name in the trials' "worker" attribute: a RUNNING trial of this machine whose
        # process is gone is failed at once; others wait for their heartbeat to go stale.
        self.host = os.environ.get("DEEPSCAN_TUNE_HOST") or socket.gethostname()
        self.worker = "%s:%d" % (self.host, os.getpid())
        self.child = None
        self.stop_signal = 0
        self.running_trial = None
        self.last_trainer_rc = 0
        self.retry = optuna.storages.RetryFailedTrialCallback(max_retry=plan["retries"])

    # ---- storage, study ----------------------------------------------------------------------
    def open_storage(self):
        url = self.plan["storage"]
        hb = int(self.plan["heartbeat_s"])
        if url.startswith("postgresql"):
            try:
                import psycopg2  # noqa: F401  (SQLAlchemy's PostgreSQL driver)
            except ImportError:
                fail(EXIT_NOT_SUPPORTED, "a postgresql:// storage needs python3-psycopg2 (apt-get install python3-psycopg2)")
            kwargs = {"connect_args": {"connect_timeout": max(1, int(math.ceil(self.plan["connect_timeout_s"])))},
                      "pool_pre_ping": True}
        else:
            kwargs = {"connect_args": {"timeout": 60}}  # several processes on one file wait for its lock
        from sqlalchemy.exc import OperationalError
        for attempt in range(3):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=hb,
                                                  grace_period=2 * hb, failed_trial_callback=self.retry)
            except OperationalError as e:  # cannot connect, cannot open the file
                if url.startswith("sqlite"):
                    fail(EXIT_IO, "cannot open the study storage %s: %s" % (url, first_line(e)))
                fail(EXIT_UNREACHABLE, "cannot reach the study storage %s: %s" % (masked(url), first_line(e)))
            except Exception as e:  # e.g. two workers creating the tables at the same moment: try again
                if attempt == 2:
                    fail(EXIT_IO, "cannot set up the study storage %s: %s" % (masked(url), first_line(e)))
                time.sleep(1 + attempt)

    def sampler(self, trials_so_far):
        # A rerun with the same --seed must not replay the draws of the first run: the seed is
        # offset by the trials the study already holds (still deterministic for a given study).
        seed = self.plan["seed"] + 1000003 * trials_so_far if self.plan["seed"] >= 0 else None
        name = self.plan["sampler"]
        if name == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, self.plan["startup_trials"]))

    def pruner(self):
        name = self.plan["pruner"]
        epochs = self.plan["epochs"]
        if name == "median":
            return optuna.pruners.MedianPruner(n_startup_trials=self.plan["startup_trials"],
                                               n_warmup_steps=self.plan["warmup_epochs"])
        if name == "sha":  # successive halving, asynchronous (ASHA)
            return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
        if name == "hyperband":
            return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs), reduction_factor=3)
        return optuna.pruners.NopPruner()

    def open_study(self):
        storage = self.open_storage()
        name = self.plan["study"]
        try:
            trials_so_far = len(storage.get_all_trials(storage.get_study_id_from_name(name), deepcopy=False))
        except KeyError:  # no such study yet
            trials_so_far = 0
        for attempt in range(3):
            try:
                study = optuna.create_study(storage=storage, study_name=name, directions=self.directions,
                                            sampler=self.sampler(trials_so_far), pruner=self.pruner(),
                                            load_if_exists=True)
                break
            except Exception as e:  # another worker creating the same study at this moment: load it
                if attempt == 2:
                    code = EXIT_IO if self.plan["storage"].startswith("sqlite") else EXIT_UNREACHABLE
                    fail(code, "cannot open study %s in %s: %s" % (name, masked(self.plan["storage"]), first_line(e)))
                time.sleep(1 + attempt)
        have = [d.name.lower() for d in study.directions]
        if have != self.directions:
            fail(EXIT_USAGE, "study %s already exists with directions %s, not %s: give another --study" %
                 (name, have, self.directions))
        attrs = study.user_attrs
        if "space" not in attrs:
            study.set_user_attr("space", self.plan["space"])
            study.set_user_attr("objective", self.objective_name)
            study.set_user_attr("epochs", self.plan["epochs"])
        else:
            if attrs["space"] != self.plan["space"]:
                fail(EXIT_USAGE, "study %s already exists with a different search space: give another --study "
                     "(or the space it was started with)" % name)
            if attrs.get("objective") != self.objective_name:
                fail(EXIT_USAGE, "study %s already optimises %s, not %s: give another --study" %
                     (name, attrs.get("objective"), self.objective_name))
        return study

    def fail_dead_local_trials(self, study):
        """RUNNING trials whose worker was a process of this machine that is gone: FAIL, then retry."""
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            worker = t.user_attrs.get("worker", "")
            host, _, pid = worker.rpartition(":")
            if host != self.host or not pid.isdigit() or worker == self.worker or process_alive(int(pid)):
                continue
            if study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                print("trial %d was left running by a killed worker (pid %s): failed, queued again" % (t.number, pid),
                      flush=True)
                self.retry(study, copy.deepcopy(study._storage.get_trial(t._trial_id)))

    # ---- one trial ---------------------------------------------------------------------------
    def suggest(self, trial):
        values = {}
        for p in self.plan["space"]:
            name = p["name"]
            if p["type"] == "categorical":
                values[name] = trial.suggest_categorical(name, p["choices"])
            elif p["type"] == "int":
                values[name] = trial.suggest_int(name, p["low"], p["high"], step=int(p["step"]) if not p["log"] else 1,
                                                 log=p["log"])
            else:
                step = p["step"] if p["step"] > 0 and not p["log"] else None
                values[name] = trial.suggest_float(name, p["low"], p["high"], step=step, log=p["log"])
        return values

    def report(self, trial, epoch_stats):
        value = epoch_stats[self.objective_name]
        epoch = epoch_stats["epoch"]
        print("trial %d epoch %d: %s %.4f" % (trial.number, epoch + 1, self.objective_name, value), flush=True)
        if self.multi:
            return  # Optuna prunes single-objective studies only
        trial.report(value, epoch)
        if trial.should_prune():
            trial.set_user_attr("pruned_at_epoch", epoch + 1)
            print("trial %d pruned after epoch %d" % (trial.number, epoch + 1), flush=True)
            raise optuna.TrialPruned("%s %.4f at epoch %d" % (self.objective_name, value, epoch + 1))

    def objective(self, trial):
        values = self.suggest(trial)
        trial.set_user_attr("worker", self.worker)
        tdir = os.path.join(self.out, "trials", str(trial.number))
        trial.set_user_attr("dir", tdir)
        self.running_trial = trial
        history = trial.system_attrs.get("retry_history", [])
        resume = False
        if history and not os.path.exists(tdir):
            killed = os.path.join(self.out, "trials", str(history[-1]))
            if os.path.exists(os.path.join(killed, "last.pt")) and os.path.exists(os.path.join(killed, "state.json")):
                shutil.copytree(killed, tdir)
                resume = True
                self.drop_checkpoints(killed, keep_best=False)  # the copy carries them on
        os.makedirs(tdir, exist_ok=True)
        print("trial %d%s: %s" % (trial.number, " (retry of %d)" % history[-1] if history else "",
                                   json.dumps(values, sort_keys=True)), flush=True)
        if resume:
            with open(os.path.join(tdir, "state.json")) as f:
                done_epochs = json.load(f)["history"]
            print("trial %d continues after epoch %d of trial %d" % (trial.number, len(done_epochs), history[-1]),
                  flush=True)
            for h in done_epochs:
                self.report(trial, h)
        base_path = os.path.join(tdir, "base.json")
        with open(base_path, "w") as f:
            json.dump(self.plan["base_config"], f, indent=2)
        cmd = list(self.plan["trial_command"]) + [
            "--base", base_path, "--params", json.dumps(values), "--out", tdir,
            "--measure-threads", str(self.plan["measure_threads"]),
            "--measure-device", self.plan.get("measure_device", "auto"),
            "--latency-cache", self.plan.get("latency_cache", os.path.join(self.out, "latency-cache.json")),
            "--max-ms-per-face", repr(float(self.plan.get("max_ms_per_face", 0)))] + (["--resume"] if resume else [])
        done = None
        with open(os.path.join(tdir, "trial.log"), "a") as log:
            self.child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
            try:
                for line in self.child.stdout:
                    if not line.startswith("{"):
                        log.write(line)
                        continue
                    event = json.loads(line)
                    if event.get("event") == "latency":
                        self.record_latency(trial, event)
                    elif event.get("event") == "over_budget":
                        trial.set_user_attr("over_budget", True)
                        print("trial %d: %.2f ms per face is over the budget of %.2f ms: pruned before training" %
                              (trial.number, event["ms_per_face"], event["max_ms_per_face"]), flush=True)
                        raise optuna.TrialPruned("over the latency budget")
                    elif event.get("event") == "epoch":
                        self.report(trial, event)
                    elif event.get("event") == "done":
                        done = event
            except optuna.TrialPruned:
                self.stop_child()
                self.drop_checkpoints(tdir, keep_best=False)  # a pruned trial is never continued
                raise
            finally:
                rc = self.stop_child()
        if rc != 0 or done is None:
            self.last_trainer_rc = rc
            raise TrialFailed("trial %d: the trainer exited with %d (%s)" % (trial.number, rc,
                              os.path.join(tdir, "trial.log")), rc)
        self.drop_checkpoints(tdir, keep_best=True)  # best.pt, model.onnx and model.pt stay
        with open(os.path.join(tdir, "config.json")) as f:
            trial.set_user_attr("config", json.load(f))
        trial.set_user_attr("best_epoch", done["best_epoch"] + 1)
        trial.set_user_attr("ms_per_face", done["ms_per_face"])
        value = done["best"][self.objective_name]
        print("trial %d done: %s %.4f (epoch %d), %.2f ms per face" %
              (trial.number, self.objective_name, value, done["best_epoch"] + 1, done["ms_per_face"]), flush=True)
        return (value, done["ms_per_face"]) if self.multi else value

    def record_latency(self, trial, event):
        """The architecture's ms per face, measured (or read from the cache) before the trial trains."""
        trial.set_user_attr("ms_per_face", event["ms_per_face"])
        trial.set_user_attr("arch", event["arch"])
        trial.set_user_attr("latency_cached", event["cached"])
        trial.set_user_attr("latency_device", event["device"])
        print("trial %d: %s: %.3f ms per face on %s, %d thread(s) (%s)" %
              (trial.number, event["arch"], event["ms_per_face"], event["device"], event["measure_threads"],
               "from the latency cache" if event["cached"] else "measured"), flush=True)

    def drop_checkpoints(self, tdir, keep_best):
        """Deletes what only the resumption of a killed trial needs (last.pt, optimizer.pt; with keep_best
        False also best.pt), unless --keep-checkpoints: a trial's folder then holds only its results."""
        if self.plan.get("keep_checkpoints"):
            return
        for name in ("last.pt", "optimizer.pt") + (() if keep_best else ("best.pt",)):
            try:
                os.remove(os.path.join(tdir, name))
            except FileNotFoundError:
                pass

    def stop_child(self):
        """Stops the trial's process if it still runs (pruned, interrupted); returns its exit status."""
        child, self.child = self.child, None
        if child is None:
            return 0
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        rc = child.wait()
        child.stdout.close()
        return rc

    # ---- the study ---------------------------------------------------------------------------
    def on_signal(self, signum, _frame):
        self.stop_signal = signum
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()

    def run(self):
        study = self.open_study()
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        self.fail_dead_local_trials(study)
        wanted = self.plan["trials"]
        timeout = self.plan["timeout_s"]
        start = time.time()
        failures_in_a_row, last_failure = 0, None
        finished = lambda: len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
        print("study %s in %s: %d of %d trials finished; %s, sampler %s, pruner %s" %
              (study.study_name, masked(self.plan["storage"]), finished(), wanted,
               " and ".join(["%s (%s)" % (self.objective_name, self.directions[0])] +
                            (["ms per face (minimize)"] if self.multi else [])),
               self.plan["sampler"], self.plan["pruner"]), flush=True)
        while finished() < wanted and not self.stop_signal:
            if timeout > 0 and time.time() - start > timeout:
                print("--timeout reached: no new trial started", flush=True)
                break
            failure = []
            study.optimize(self.objective, n_trials=1, catch=(TrialFailed,),
                           callbacks=[lambda s, t: failure.append(t) if t.state == TrialState.FAIL else None])
            if self.stop_signal:
                t = self.running_trial
                if t is not None:
                    frozen = study._storage.get_trial(t._trial_id)
                    if frozen.state == TrialState.FAIL:
                        self.retry(study, copy.deepcopy(frozen))
                        print("trial %d interrupted: queued again for the next run" % t.number, flush=True)
                break
            if failure:
                failures_in_a_row += 1
                last_failure = failure[-1]
                log = os.path.join(self.out, "trials", str(last_failure.number), "trial.log")
                print("deepscan: warning: trial %d failed: %s (%s)" % (last_failure.number, last_line(log), log),
                      file=sys.stderr, flush=True)
                if failures_in_a_row >= 3:
                    break
            else:
                failures_in_a_row = 0
        code = self.summarise(study)
        if self.stop_signal:
            return 128 + self.stop_signal
        if failures_in_a_row >= 3:
            print("deepscan: 3 trials in a row failed on this worker; the last one's log: %s" %
                  os.path.join(self.out, "trials", str(last_failure.number), "trial.log"), file=sys.stderr)
            rc = self.last_trainer_rc
            return rc if 0 < rc < 126 else EXIT_INTERNAL
        return code

    # ---- results -----------------------------------------------------------------------------
    def summarise(self, study):
        trials = study.get_trials(deepcopy=False)
        count = {s.name.lower(): sum(1 for t in trials if t.state == s) for s in TrialState}
        complete = [t for t in trials if t.state == TrialState.COMPLETE and "config" in t.user_attrs]
        print("trials: %d complete, %d pruned, %d failed, %d running, %d waiting" %
              (count["complete"], count["pruned"], count["fail"], count["running"], count["waiting"]), flush=True)
        summary = {"study": study.study_name, "objective": self.objective_name, "directions": self.directions,
                   "counts": count, "trials": [trial_row(t) for t in trials],
                   "architectures": architectures(trials)}
        if not complete:
            print("no complete trial yet: nothing to write", flush=True)
            write_json(os.path.join(self.out, "study-summary.json"), summary)
            return 0
        sign = 1 if self.directions[0] == "maximize" else -1
        if self.multi:
            front = sorted((t for t in study.best_trials if "config" in t.user_attrs),
                           key=lambda t: -sign * t.values[0])
            print("Pareto front (%s vs ms per face, measured here with %d thread(s)):" %
                  (self.objective_name, self.plan["measure_threads"]))
            print("  trial  %-14s  ms/face  architecture / parameters" % self.objective_name)
            os.makedirs(os.path.join(self.out, "pareto"), exist_ok=True)
            for t in front:
                print("  %5d  %14.4f  %7.2f  %s  %s" % (t.number, t.values[0], t.values[1], t.user_attrs.get("arch", "?"),
                                                        json.dumps(t.params, sort_keys=True)))
                write_json(os.path.join(self.out, "pareto", "trial-%d.json" % t.number),
                           self.final_config(t, "pareto-%d" % t.number))
            best = front[0]  # the most accurate point of the front
            summary["pareto_front"] = [t.number for t in front]
        else:
            best = study.best_trial
            print("best trial %d: %s %.4f (epoch %d of %d), %.2f ms per face, %s; %s" %
                  (best.number, self.objective_name, best.value, best.user_attrs.get("best_epoch", 0),
                   self.plan["epochs"], best.user_attrs.get("ms_per_face", float("nan")),
                   best.user_attrs.get("arch", "?"), json.dumps(best.params, sort_keys=True)))
        summary["best_trial"] = best.number
        path = os.path.join(self.out, "best-config.json")
        write_json(path, self.final_config(best, "best"))
        write_json(os.path.join(self.out, "study-summary.json"), summary)
        print("wrote %s (deepscan train --config %s)" % (path, path), flush=True)
        self.plot(study, trials)
        return 0

    def final_config(self, trial, name):
        config = dict(trial.user_attrs["config"])
        config["out_dir"] = os.path.join(self.out, name)
        return config

    def plot(self, study, trials):
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("deepscan: warning: python3-matplotlib is not installed: no plot", file=sys.stderr)
            return
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        done = [t for t in trials if t.state == TrialState.COMPLETE and "ms_per_face" in t.user_attrs]
        if self.multi:
            front = {t.number for t in study.best_trials}
            xs = [t.values[1] for t in done]
            ys = [t.values[0] for t in done]
            ax.scatter(xs, ys, c=["tab:red" if t.number in front else "tab:grey" for t in done], s=28)
            pts = sorted((t.values[1], t.values[0]) for t in done if t.number in front)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="tab:red", lw=1, label="Pareto front")
            for t in done:
                if t.number in front:
                    ax.annotate(str(t.number), (t.values[1], t.values[0]), fontsize=7, xytext=(3, 3),
                                textcoords="offset points")
            ax.set_xlabel("ms per face (measured here, %d thread(s))" % self.plan["measure_threads"])
            ax.set_ylabel(self.objective_name)
            ax.legend(loc="lower right")
            path = os.path.join(self.out, "pareto.png")
        else:
            sign = 1 if self.directions[0] == "maximize" else -1
            xs = [t.number for t in done]
            ys = [t.value for t in done]
            ax.scatter(xs, ys, color="tab:blue", s=24, label="complete")
            best, bx, by = None, [], []
            for t in sorted(done, key=lambda t: t.number):
                if best is None or sign * t.value > sign * best:
                    best = t.value
                bx.append(t.number)
                by.append(best)
            ax.step(bx, by, where="post", color="tab:green", label="best so far")
            pruned = [t for t in trials if t.state == TrialState.PRUNED and t.intermediate_values]
            if pruned:
                ax.scatter([t.number for t in pruned], [t.intermediate_values[max(t.intermediate_values)] for t in pruned],
                           marker="x", color="tab:red", label="pruned (last reported)")
            ax.set_xlabel("trial")
            ax.set_ylabel(self.objective_name)
            ax.legend(loc="best")
            path = os.path.join(self.out, "history.png")
        ax.set_title("deepscan tune: study %s" % study.study_name)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        tmp = path + ".tmp.png"
        fig.savefig(tmp)
        os.replace(tmp, path)
        print("wrote %s" % path, flush=True)


def architectures(trials):
    """Per architecture (ArchLabel): its ms per face, the trials that used it, the trial that measured it."""
    archs = {}
    for t in trials:
        label = t.user_attrs.get("arch")
        if label is None:
            continue
        a = archs.setdefault(label, {"ms_per_face": t.user_attrs.get("ms_per_face"), "trials": [],
                                     "measured_in_trial": None})
        a["trials"].append(t.number)
        if t.user_attrs.get("latency_cached") is False and a["measured_in_trial"] is None:
            a["measured_in_trial"] = t.number
    return archs


def trial_row(t):
    return {"number": t.number, "state": t.state.name.lower(), "values": t.values, "params": t.params,
            "worker": t.user_attrs.get("worker"), "ms_per_face": t.user_attrs.get("ms_per_face"),
            "arch": t.user_attrs.get("arch"), "latency_cached": t.user_attrs.get("latency_cached"),
            "over_budget": t.user_attrs.get("over_budget", False),
            "pruned_at_epoch": t.user_attrs.get("pruned_at_epoch"),
            "retry_of": (t.system_attrs.get("retry_history") or [None])[-1],
            "intermediate_values": {str(k): v for k, v in t.intermediate_values.items()}}


def last_line(path):
    """The last non-empty line of a trial's log (the trainer's error), or a note that there is none."""
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        return lines[-1] if lines else "no message"
    except OSError:
        return "no log"


def write_json(path, obj):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def process_alive(pid):
    """Whether `pid` is a running study driver (a reused pid of another program counts as gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return b"optuna_driver" in f.read()
    except OSError:
        return False


def main():
    parser = argparse.ArgumentParser(description="deepscan tune's Optuna driver (run by `deepscan tune`)")
    parser.add_argument("--plan", required=True)
    args = parser.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)
    # The latest plan is kept beside the study for the record; each process wrote its own.
    os.replace(args.plan, os.path.join(plan["out"], "tune-plan.json"))
    # Optuna's own warnings (a failed trial's traceback) are replaced by one line each (trial.log has the rest).
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return Driver(plan).run()


if __name__ == "__main__":
    sys.exit(main())
