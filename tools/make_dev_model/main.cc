// make_dev_model OUT.onnx: writes the untrained development classifier and its metadata
// (trained: false). It lets the pipeline run end to end before a trained model exists; every
// report made with it says that its scores mean nothing.
#include <fstream>
#include <iostream>

#include "infer/model_metadata.h"
#include "infer/onnx_graph.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_dev_model OUT.onnx\n";
    return 2;
  }
  const std::string path = argv[1];
  deepscan::infer::ModelMetadata m;
  m.name = "dev-untrained";
  m.version = "0";
  m.input_size = 128;
  m.trained = false;
  deepscan::Status st = deepscan::infer::WriteRandomConvModel(path, m.input_size, 20261128);
  if (!st.ok()) {
    std::cerr << st.ToString() << "\n";
    return 1;
  }
  std::ofstream(deepscan::infer::MetadataPathFor(path)) << deepscan::infer::ModelMetadataToJson(m) << "\n";
  return 0;
}
