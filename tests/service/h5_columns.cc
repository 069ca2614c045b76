// Prints the columns of a `deepscan status --export FILE.h5` file as one JSON object
// {"rows": N, "format": ..., "path": [...], "hash": [...], "status": [...], "label": [...],
//  "score": [... null for NaN], "total_s": [...], "identity_scores": [[...], ...]}, read with the
// HDF5 C API, so the service test can compare it with the JSON-lines export. Exit 1 on any error.
#include <hdf5.h>

#include <cmath>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

bool ReadStrings(hid_t file, const char* name, nlohmann::json* out) {
  hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
  if (set < 0) return false;
  hid_t space = H5Dget_space(set);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  std::vector<char*> v(static_cast<size_t>(n), nullptr);
  bool ok = n == 0 || H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0;
  *out = nlohmann::json::array();
  for (char* s : v) out->push_back(s ? std::string(s) : std::string());
  if (n > 0 && ok) H5Dvlen_reclaim(type, space, H5P_DEFAULT, v.data());
  H5Tclose(type);
  H5Sclose(space);
  H5Dclose(set);
  return ok;
}

bool ReadDoubles(hid_t file, const char* name, nlohmann::json* out) {
  hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
  if (set < 0) return false;
  hid_t space = H5Dget_space(set);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  std::vector<double> v(static_cast<size_t>(n));
  bool ok = n == 0 || H5Dread(set, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0;
  *out = nlohmann::json::array();
  for (double d : v) out->push_back(std::isnan(d) ? nlohmann::json(nullptr) : nlohmann::json(d));
  H5Sclose(space);
  H5Dclose(set);
  return ok;
}

bool ReadVlenFloats(hid_t file, const char* name, nlohmann::json* out) {
  hid_t set = H5Dopen2(file, name, H5P_DEFAULT);
  if (set < 0) return false;
  hid_t space = H5Dget_space(set);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  hid_t type = H5Tvlen_create(H5T_NATIVE_FLOAT);
  std::vector<hvl_t> v(static_cast<size_t>(n));
  bool ok = n == 0 || H5Dread(set, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0;
  *out = nlohmann::json::array();
  for (const hvl_t& row : v) {
    nlohmann::json r = nlohmann::json::array();
    for (size_t i = 0; i < row.len; ++i) r.push_back(static_cast<const float*>(row.p)[i]);
    out->push_back(r);
  }
  if (n > 0 && ok) H5Dvlen_reclaim(type, space, H5P_DEFAULT, v.data());
  H5Tclose(type);
  H5Sclose(space);
  H5Dclose(set);
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: h5_columns FILE.h5\n";
    return 2;
  }
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  hid_t file = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
  if (file < 0) {
    std::cerr << "cannot open " << argv[1] << "\n";
    return 1;
  }
  nlohmann::json out;
  bool ok = true;
  for (const char* s : {"entry", "path", "name", "hash", "status", "label", "worker", "error_code", "error_message"}) {
    ok = ReadStrings(file, s, &out[s]) && ok;
  }
  for (const char* d : {"score", "threshold", "open_s", "decode_s", "convert_s", "detect_s", "classify_s", "total_s"}) {
    ok = ReadDoubles(file, d, &out[d]) && ok;
  }
  ok = ReadVlenFloats(file, "identity_scores", &out["identity_scores"]) && ok;
  char format[64] = {0};
  hid_t attr = H5Aopen(file, "format", H5P_DEFAULT);
  if (attr >= 0) {
    hid_t t = H5Aget_type(attr);
    if (H5Tget_size(t) < sizeof format) H5Aread(attr, t, format);
    H5Tclose(t);
    H5Aclose(attr);
  }
  out["format"] = std::string(format);
  out["rows"] = out["path"].size();
  H5Fclose(file);
  if (!ok) {
    std::cerr << "a column is missing or unreadable\n";
    return 1;
  }
  std::cout << out.dump() << "\n";
  return 0;
}
