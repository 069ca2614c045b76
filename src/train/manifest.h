// train/manifest.h: labelled input lists for extraction and evaluation.
//
// A manifest is a CSV file with a header row; the columns used are `file` (or `path`), `label`
// (REAL/FAKE, real/fake or 0/1) and, optionally, `identity_group`. Paths are resolved against the
// manifest's folder, then its parent (the layout of ../shared/data/*/MANIFEST.csv), then the
// working folder.
#ifndef DEEPSCAN_TRAIN_MANIFEST_H_
#define DEEPSCAN_TRAIN_MANIFEST_H_

#include <map>
#include <string>
#include <vector>

#include "deepscan/status.h"

namespace deepscan::train {

struct LabelledInput {
  std::string path;   // resolved, openable path
  std::string name;   // as written in the manifest (stable id for the store)
  int label = 0;      // 0 real, 1 fake
  std::string group;  // identity group; the file name when the manifest has none
};

// Parses RFC 4180 CSV text (quoted fields, doubled quotes, CRLF or LF) into rows of fields.
// A small parser of our own: Debian ships no maintained C++ CSV library, and this is 30 lines.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text);

// Reads a manifest. Errors: kIoError (unreadable), kInvalidArgument (no file/label column,
// unknown label), kNotFound (a listed file is missing).
Result<std::vector<LabelledInput>> ReadManifest(const std::string& csv_path);

// Parses "REAL"/"real"/"0" -> 0, "FAKE"/"fake"/"1" -> 1; -1 otherwise.
int ParseLabel(const std::string& s);

}  // namespace deepscan::train

#endif  // DEEPSCAN_TRAIN_MANIFEST_H_
