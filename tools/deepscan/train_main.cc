// deepscan-train: the deepscan subcommands that need LibTorch (`deepscan train` runs this).
#include "app.h"

int main(int argc, char** argv) {
  return deepscan::tools::RunApp(argc, argv, "deepscan (training tools)", {deepscan::tools::AddTrainCommand});
}
