#!/usr/bin/python3
"""The face-swap dev set, broken down the way issue 10 and faceswap-dev/README.md ask.

Reads the per-video scores `deepscan eval --out DIR` wrote (DIR/scores.csv) for
../shared/data/videos/faceswap-dev/MANIFEST.csv and prints video AUC pooled, on DeepFaceLive, on the
other tools taken together and on Celeb-DF, and in how many (fake, its own source) pairs the swap scores
above its source. Several DIRs (one per model) are printed side by side. Standard library only.

    bench/dev_report.py [--manifest M] [--json] NAME=DIR [NAME=DIR ...]
"""
import argparse
import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MANIFEST = os.path.join(HERE, "..", "..", "shared", "data", "videos", "faceswap-dev", "MANIFEST.csv")


def auc(pos, neg):
    """Mann-Whitney AUC; ties count a half. None when a class is empty."""
    if not pos or not neg:
        return None
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


def group_of(row):
    repo = row["repo"]
    tool = row["dataset_or_tool"]
    if "CelebDF" in repo or tool.startswith("Celeb-DF") or tool.startswith("probably Celeb-DF"):
        return "Celeb-DF"
    if repo == "iperov/DeepFaceLive":
        return "DeepFaceLive"
    return "other tools"


def report(manifest_rows, scores_csv):
    scores = {}
    with open(scores_csv, newline="") as f:
        for r in csv.DictReader(f):
            if r["status"] == "ok" and r["score"] not in ("", "-1"):
                scores[r["video"]] = float(r["score"])
    groups = {"pooled": ([], []), "DeepFaceLive": ([], []), "other tools": ([], []), "Celeb-DF": ([], [])}
    for row in manifest_rows:
        s = scores.get(row["file"])
        if s is None:
            continue
        fake = row["label"].upper() == "FAKE"
        for g in ("pooled", group_of(row)):
            groups[g][0 if fake else 1].append(s)
    pairs = won = 0
    for row in manifest_rows:
        if row["label"].upper() == "FAKE" and row.get("pair") and row["file"] in scores and row["pair"] in scores:
            pairs += 1
            won += scores[row["file"]] > scores[row["pair"]]
    out = {g: {"auc": auc(*groups[g]), "fakes": len(groups[g][0]), "reals": len(groups[g][1])} for g in groups}
    out["pairs"] = {"won": won, "of": pairs}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--manifest", default=DEFAULT_MANIFEST)
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("runs", nargs="+", metavar="NAME=DIR")
    a = ap.parse_args()
    with open(a.manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    results = {}
    for spec in a.runs:
        name, _, d = spec.partition("=")
        if not d:
            sys.exit("expected NAME=DIR, got " + spec)
        results[name] = report(rows, os.path.join(d, "scores.csv"))
    if a.json:
        print(json.dumps(results, indent=2))
        return
    cols = ["pooled", "DeepFaceLive", "other tools", "Celeb-DF"]
    first = next(iter(results.values()))
    print("| model | " + " | ".join(f"{c} AUC ({first[c]['fakes']}F/{first[c]['reals']}R)" for c in cols) +
          " | swap > its source |")
    print("|---" * (len(cols) + 2) + "|")
    for name, r in results.items():
        cells = ["-" if r[c]["auc"] is None else f"{r[c]['auc']:.3f}" for c in cols]
        print(f"| {name} | " + " | ".join(cells) + f" | {r['pairs']['won']} of {r['pairs']['of']} |")


if __name__ == "__main__":
    main()
