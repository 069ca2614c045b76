// make_dev_model [--heatmap] OUT.onnx: writes the untrained development classifier and its
// metadata (trained: false). It lets the pipeline run end to end before a trained model exists;
// every report made with it says that its scores mean nothing. --heatmap adds the blend-heatmap
// output "mask" (for tests of scan --heatmaps).
#include <fstream>
#include <iostream>
#include <string>

#include "infer/model_metadata.h"
#include "infer/onnx_graph.h"

int main(int argc, char** argv) {
  const bool heatmap = argc == 3 && std::string(argv[1]) == "--heatmap";
  if (argc != 2 && !heatmap) {
    std::cerr << "usage: make_dev_model [--heatmap] OUT.onnx\n";
    return 2;
  }
  const std::string path = argv[argc - 1];
  deepscan::infer::ModelMetadata m;
  m.name = "dev-untrained";
  m.version = "0";
  m.input_size = 128;
  m.trained = false;
  deepscan::Status st = deepscan::infer::WriteRandomConvModel(path, m.input_size, 20261128, heatmap);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  std::ofstream(deepscan::infer::MetadataPathFor(path)) << deepscan::infer::ModelMetadataToJson(m) << "\n";
  return 0;
}
