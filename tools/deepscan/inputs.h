// Inputs named on a command line (scan, submit): files, directories of videos, URLs.
#ifndef DEEPSCAN_TOOLS_INPUTS_H_
#define DEEPSCAN_TOOLS_INPUTS_H_

#include <string>
#include <vector>

namespace deepscan::tools {

// Named files (and URLs) are always kept; a directory stands for its files with a video
// extension (recursively with `recursive`), sorted by path; a directory without any stays as it
// is (reported as "is a directory"). docs/exit-codes.md lists the extensions.
std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs, bool recursive);

}  // namespace deepscan::tools

#endif  // DEEPSCAN_TOOLS_INPUTS_H_
