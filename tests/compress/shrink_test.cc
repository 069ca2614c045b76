// The Torch side of the compression tool chain: ONNX import (train/onnx_import.h), structured and
// unstructured pruning (compress/prune.h) and low-rank factorisation (compress/lowrank.h), on
// small random zoo models. What they must keep: the function (exactly, where nothing is lost), the
// channel bookkeeping (every tensor of a group shrinks together), and an export that ONNX Runtime
// runs with the smaller shapes.
#include <cmath>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "compress/lowrank.h"
#include "compress/onnx_io.h"
#include "compress/prune.h"
#include "compress/qat.h"
#include "infer/ort_model.h"
#include "test_env.h"
#include "train/onnx_export.h"
#include "train/onnx_import.h"
#include "train/zoo.h"

namespace deepscan::compress {
namespace {

using deepscan::testing::TempDir;
using train::Model;
using train::ModelSpec;

ModelSpec V3Small() {
  ModelSpec s;
  s.arch = "mobilenetv3_small";
  s.width = 0.5f;
  s.input_size = 64;
  s.mask_head = true;
  s.mask_stride = 8;
  s.dropout = 0;
  return s;
}

ModelSpec V1S16() {
  ModelSpec s;
  s.arch = "mobilenetv1_s16";
  s.width = 0.25f;
  s.input_size = 64;
  s.mask_head = true;
  s.dropout = 0;
  return s;
}

torch::Tensor Images(int n, int s, uint64_t seed) {
  torch::manual_seed(seed);
  return (torch::randn({n, 3, s, s}) * 0.8 + torch::randn({n, 3, 1, 1}) * 0.2).contiguous();
}

// Non-trivial BatchNorms (statistics of train-mode passes), modest residual gains, O(1) logits.
Model RandomModel(const ModelSpec& spec, uint64_t seed) {
  torch::manual_seed(seed);
  Model m = *train::MakeModel(spec);
  torch::NoGradGuard no_grad;
  for (auto& mod : m->modules(false)) {
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) {
      bn->weight.uniform_(0.5, 1.5);
      bn->bias.normal_(0.0, 0.2);
      bn->options.momentum(c10::nullopt);
      bn->reset_running_stats();
    }
  }
  for (auto& b : m->blocks) {
    if (b->residual) b->project->bn->weight.uniform_(0.2, 0.6);
  }
  for (torch::nn::Linear* l : {&m->pre_logits, &m->fc}) {
    if (*l) (*l)->weight.normal_(0.0, 2.0 / std::sqrt(static_cast<double>((*l)->weight.size(1))));
  }
  m->train();
  for (int i = 0; i < 3; ++i) m->forward(Images(8, spec.input_size, seed * 10 + i));
  m->eval();
  return m;
}

struct Out {
  torch::Tensor logit, mask;
};
Out Forward(Model& m, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  m->eval();
  train::ModelOutput o = m->forward(x);
  return {o.logit, o.mask_logit.defined() ? o.mask_logit : torch::Tensor()};
}

float MaxDiff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<float>(); }

// ORT's logits for the exported `m` on `x`.
std::vector<float> OrtLogits(const std::string& path, const torch::Tensor& x) {
  infer::OrtModelOptions oo;
  oo.threads = 1;
  auto ort = infer::OrtModel::Load(path, oo);
  EXPECT_TRUE(ort.ok()) << ort.status().ToString();
  if (!ort.ok()) return {};
  std::vector<std::vector<float>> outs;
  std::vector<std::vector<int64_t>> shapes;
  torch::Tensor c = x.contiguous();
  EXPECT_TRUE((*ort)->Run(c.data_ptr<float>(), c.sizes().vec(), &outs, &shapes).ok());
  return outs.empty() ? std::vector<float>{} : outs[0];
}

std::string Export(Model& m, const std::string& name) {
  const std::string path = TempDir() + "/" + name + ".onnx";
  infer::ModelMetadata meta;
  meta.name = name;
  meta.mean = {0.5f, 0.5f, 0.5f};
  meta.std = {0.25f, 0.25f, 0.25f};
  EXPECT_TRUE(train::ExportOnnx(m, meta, path).ok());
  return path;
}

void ExpectOrtMatches(Model& m, const std::string& name, const torch::Tensor& x) {
  const std::string path = Export(m, name);
  const std::vector<float> got = OrtLogits(path, x);
  const torch::Tensor want = Forward(m, x).logit;
  ASSERT_EQ(got.size(), static_cast<size_t>(want.size(0)));
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i][0].item<float>(), 2e-4) << name << " image " << i;
}

class ImportTest : public ::testing::TestWithParam<ModelSpec> {};

TEST_P(ImportTest, ImportedExportComputesWhatTheModelDid) {
  Model m = RandomModel(GetParam(), 3);
  const torch::Tensor x = Images(4, GetParam().input_size, 7);
  const std::string path = Export(m, "import-" + GetParam().arch);
  auto imported = train::ImportOnnx(path);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_EQ(imported->meta.name, "import-" + GetParam().arch);
  Out a = Forward(m, x), b = Forward(imported->model, x);
  EXPECT_GT((a.logit.max() - a.logit.min()).item<float>(), 0.05f) << "logits that do not differ prove little";
  EXPECT_LE(MaxDiff(a.logit, b.logit), 1e-4f);
  ASSERT_TRUE(b.mask.defined());
  EXPECT_LE(MaxDiff(a.mask, b.mask), 1e-4f);
}

INSTANTIATE_TEST_SUITE_P(Archs, ImportTest, ::testing::Values(V3Small(), V1S16()),
                         [](const auto& info) { return info.param.arch; });

TEST(ImportTest, WrongArchitectureOrFileIsAnError) {
  EXPECT_EQ(train::ImportOnnx(TempDir() + "/none.onnx").status().code(), Code::kNotFound);
  Model m = RandomModel(V3Small(), 1);
  const std::string path = Export(m, "wrong-arch");
  // The metadata claims a wider network than the weights hold.
  ModelSpec wider = V3Small();
  wider.width = 1.0f;
  infer::ModelMetadata meta = *infer::LoadModelMetadata(path);
  ASSERT_TRUE(train::WriteModelMetadata(infer::MetadataPathFor(path), meta, wider).ok());
  auto r = train::ImportOnnx(path);
  EXPECT_EQ(r.status().code(), Code::kInvalidModel);
  EXPECT_NE(r.status().message().find("shape"), std::string::npos) << r.status().message();
}

// Every tensor of a group indexes the group's channels along its axis; every conv and linear
// weight belongs to some group on both of its channel axes (depthwise: axis 0 only).
TEST(ChannelGroupsTest, GroupsAccountForEveryChannelAxis) {
  for (const ModelSpec& spec : {V3Small(), V1S16()}) {
    Model m = RandomModel(spec, 2);
    std::map<std::string, torch::Tensor> all;
    for (const auto& p : m->named_parameters()) all[p.key()] = p.value();
    for (const auto& b : m->named_buffers()) all[b.key()] = b.value();
    std::map<std::string, std::set<int>> covered;
    for (const ChannelGroup& g : ChannelGroups(m)) {
      EXPECT_FALSE(g.producers.empty()) << g.key;
      for (const auto& mem : g.members) {
        ASSERT_TRUE(all.count(mem.tensor)) << g.key << ": " << mem.tensor;
        EXPECT_EQ(all[mem.tensor].size(mem.dim), g.channels) << g.key << ": " << mem.tensor << " axis " << mem.dim;
        EXPECT_TRUE(covered[mem.tensor].insert(mem.dim).second) << mem.tensor << " axis " << mem.dim << " twice";
      }
    }
    for (const auto& [name, t] : all) {
      if (name.size() < 7 || name.substr(name.size() - 7) != ".weight" || t.dim() < 2) continue;
      const bool depthwise = name.find("depthwise") != std::string::npos;
      EXPECT_TRUE(covered[name].count(0) || name == "fc.weight" || name == "mask_out.weight") << name << " axis 0";
      if (!depthwise && name.find("stem.conv") == std::string::npos) EXPECT_TRUE(covered[name].count(1)) << name << " axis 1";
    }
  }
}

TEST(PruneChannelsTest, RatioZeroKeepsTheModel) {
  Model m = RandomModel(V3Small(), 4);
  ChannelPruneOptions o;
  o.ratio = 0;
  PruneReport rep;
  auto p = PruneChannels(m, o, &rep);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(rep.params_after, rep.params_before);
  const torch::Tensor x = Images(3, 64, 1);
  EXPECT_LE(MaxDiff(Forward(m, x).logit, Forward(*p, x).logit), 1e-5f);
}

// Half of every group's channels made dead (every BatchNorm of the group, or the SE / linear
// producer, outputs exactly 0 there): pruning half must pick exactly those and change nothing.
TEST(PruneChannelsTest, DeadChannelsArePrunedWithoutChangingTheOutput) {
  for (const ModelSpec& spec : {V3Small(), V1S16()}) {
    Model m = RandomModel(spec, 5);
    {
      torch::NoGradGuard no_grad;
      std::map<std::string, torch::Tensor> params;
      for (const auto& p : m->named_parameters()) params[p.key()] = p.value();
      for (const ChannelGroup& g : ChannelGroups(m)) {
        torch::Tensor dead = torch::randperm(g.channels).slice(0, 0, g.channels / 2);
        for (const auto& mem : g.members) {
          const std::string& n = mem.tensor;
          const bool bn_affine = n.find(".bn.weight") != std::string::npos || n.find(".bn.bias") != std::string::npos;
          const bool producer_row = mem.dim == 0 && (n.find(".se.fc1.") != std::string::npos ||
                                                     n.rfind("pre_logits.", 0) == 0);
          if ((bn_affine || producer_row) && params.count(n)) params[n].index_fill_(mem.dim, dead, 0.0);
        }
      }
    }
    ChannelPruneOptions o;
    o.ratio = 0.5;
    o.multiple = 1;
    o.min_channels = 1;
    PruneReport rep;
    auto p = PruneChannels(m, o, &rep);
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    EXPECT_LT(rep.params_after, rep.params_before * 0.45) << spec.arch;
    for (const auto& g : rep.groups) EXPECT_EQ(g.after, g.before - g.before / 2) << g.key;
    const torch::Tensor x = Images(4, spec.input_size, 2);
    Out a = Forward(m, x), b = Forward(*p, x);
    EXPECT_GT((a.logit.max() - a.logit.min()).item<float>(), 1e-3f);
    EXPECT_LE(MaxDiff(a.logit, b.logit), 1e-4f) << spec.arch;
    EXPECT_LE(MaxDiff(a.mask, b.mask), 1e-4f) << spec.arch;
  }
}

// A real reduction: fewer channels in the spec, the checkpoint and the ONNX file, which ORT runs
// as the pruned model computes; the checkpoint rebuilds it from its own spec.
TEST(PruneChannelsTest, PrunedModelIsSmallerEverywhere) {
  Model m = RandomModel(V3Small(), 6);
  ChannelPruneOptions o;
  o.ratio = 0.5;
  auto p = PruneChannels(m, o);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  const ModelSpec& spec = (*p)->spec();
  ASSERT_TRUE(spec.channels.count("blocks.3.expanded"));
  EXPECT_LT(spec.channels.at("blocks.3.expanded"), m->blocks[3]->expand->bn->options.num_features());
  EXPECT_FALSE(spec.channels.count("blocks.5.out")) << "a residual block's output is its input's group";
  const std::string ckpt = TempDir() + "/pruned.pt";
  ASSERT_TRUE(train::SaveCheckpoint(*p, ckpt).ok());
  auto back = train::LoadCheckpoint(ckpt);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ((*back)->spec().channels, spec.channels);
  const torch::Tensor x = Images(3, 64, 3);
  EXPECT_LE(MaxDiff(Forward(*p, x).logit, Forward(*back, x).logit), 1e-6f);
  ExpectOrtMatches(*p, "pruned", x);
  auto proto = ReadModel(TempDir() + "/pruned.onnx");
  ASSERT_TRUE(proto.ok());
  for (const auto& t : proto->graph().initializer()) {
    if (t.name() == "blocks.3.expand.weight") EXPECT_EQ(t.dims(0), spec.channels.at("blocks.3.expanded"));
  }
  // And the export imports back (prune, export, fine-tune from the ONNX file).
  auto imported = train::ImportOnnx(TempDir() + "/pruned.onnx");
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_LE(MaxDiff(Forward(*p, x).logit, Forward(imported->model, x).logit), 1e-4f);
}

TEST(PruneChannelsTest, BadOptionsAndSpecsAreErrors) {
  Model m = RandomModel(V1S16(), 1);
  ChannelPruneOptions o;
  o.ratio = 0.99;
  EXPECT_EQ(PruneChannels(m, o).status().code(), Code::kInvalidArgument);
  o.ratio = 0.5;
  o.skip = {"blocks.99.out"};
  EXPECT_EQ(PruneChannels(m, o).status().code(), Code::kInvalidArgument);
  ModelSpec bad = V1S16();
  bad.channels["blocks.0.expanded"] = 8;  // MobileNet v1 blocks have no expansion
  EXPECT_EQ(train::MakeModel(bad).status().code(), Code::kInvalidArgument);
  bad = V1S16();
  bad.ranks["blocks.0.depthwise"] = {4};
  EXPECT_EQ(train::MakeModel(bad).status().code(), Code::kInvalidArgument);
  bad = V1S16();
  bad.channels["stem"] = 0;
  EXPECT_EQ(train::MakeModel(bad).status().code(), Code::kInvalidArgument);
  // The spec's overrides survive JSON.
  ModelSpec s = V1S16();
  s.channels["blocks.2.out"] = 24;
  s.ranks["blocks.4.project"] = {16};
  auto j = train::ModelSpecFromJson(train::ModelSpecToJson(s));
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->channels, s.channels);
  EXPECT_EQ(j->ranks, s.ranks);
}

TEST(MagnitudeTest, GlobalAndPerLayerSparsityAndMasksHold) {
  Model m = RandomModel(V3Small(), 7);
  MagnitudeOptions o;
  o.sparsity = 0.6;
  auto masks = MagnitudeMasks(m, o);
  ASSERT_TRUE(masks.ok());
  EXPECT_FALSE(masks->count("fc.weight"));
  ApplyMasks(m, *masks);
  EXPECT_NEAR(MaskedSparsity(m, *masks), 0.6, 0.005);
  // Fine-tuning moves the weights; the masks put the zeros back.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->parameters()) p.add_(0.01);
  }
  ApplyMasks(m, *masks);
  EXPECT_NEAR(MaskedSparsity(m, *masks), 0.6, 0.005);
  o.global = false;
  Model fresh = RandomModel(V3Small(), 7);
  auto layer = MagnitudeMasks(fresh, o);
  ASSERT_TRUE(layer.ok());
  for (const auto& [name, mask] : *layer) {
    if (mask.numel() < 100) continue;
    EXPECT_NEAR(1.0 - mask.mean().item<double>(), 0.6, 0.02) << name;
  }
  o.sparsity = 1.0;
  EXPECT_EQ(MagnitudeMasks(m, o).status().code(), Code::kInvalidArgument);
}

// A layer whose weights are all small (a wide linear layer, a conv before a large BatchNorm scale)
// keeps weights under the global threshold: one threshold over raw magnitudes would empty it.
TEST(MagnitudeTest, GlobalPruningEmptiesNoLayer) {
  Model m = RandomModel(V3Small(), 9);
  std::string tiny;
  {
    torch::NoGradGuard no_grad;
    for (auto& p : m->named_parameters()) {
      if (p.key().find(".weight") != std::string::npos && p.value().dim() == 4 && p.value().size(1) > 1 &&
          tiny.empty() && p.key().rfind("blocks.", 0) == 0) {
        tiny = p.key();
        p.value().mul_(1e-4);
      }
    }
  }
  ASSERT_FALSE(tiny.empty());
  MagnitudeOptions o;
  o.sparsity = 0.8;
  auto masks = MagnitudeMasks(m, o);
  ASSERT_TRUE(masks.ok());
  for (const auto& [name, mask] : *masks) {
    EXPECT_GT(mask.sum().item<double>(), 0) << name << " lost every weight";
  }
  EXPECT_LT(1.0 - masks->at(tiny).mean().item<double>(), 0.99) << tiny;
  ApplyMasks(m, *masks);
  EXPECT_NEAR(MaskedSparsity(m, *masks), 0.8, 0.005);
}

// Weights of exactly low rank factorise without loss (SVD for 1x1, Tucker-2 for k x k); the model
// and its export get smaller.
TEST(LowRankTest, ExactlyLowRankLayersFactoriseWithoutLoss) {
  ModelSpec spec = V1S16();
  spec.width = 0.5f;  // pointwise convs up to 256 x 256, mask conv 64 x 256 x 3 x 3
  Model m = RandomModel(spec, 8);
  {
    torch::NoGradGuard no_grad;
    torch::Tensor& w = m->blocks[9]->project->conv->weight;  // [256, 256, 1, 1]
    const int64_t o = w.size(0), i = w.size(1);
    w.copy_((torch::randn({o, 16}).matmul(torch::randn({16, i})) / 16.0).view({o, i, 1, 1}));
    torch::Tensor& k = m->mask_conv->conv->weight;  // [64, 256, 3, 3]
    const torch::Tensor core = torch::randn({8, 16, 3, 3}) * 0.1;
    const torch::Tensor u_out = torch::randn({k.size(0), 8}), u_in = torch::randn({k.size(1), 16});
    k.copy_(torch::einsum("rskl,or,is->oikl", {core, u_out, u_in}) / 4.0);
    m->train();
    for (int it = 0; it < 3; ++it) m->forward(Images(8, 64, 100 + it));  // statistics for the new weights
    m->eval();
  }
  LowRankOptions o;
  o.energy = 0.999999;
  o.multiple = 8;
  o.only = {"blocks.9.project", "mask_conv"};
  LowRankReport rep;
  auto f = FactorizeLowRank(m, o, &rep);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ(rep.layers.size(), 2u);
  EXPECT_EQ(rep.layers[0].rank, (std::vector<int64_t>{16}));
  EXPECT_EQ(rep.layers[1].rank, (std::vector<int64_t>{16, 8}));
  EXPECT_LT(rep.params_after, rep.params_before);
  EXPECT_EQ((*f)->spec().ranks.at("mask_conv"), (std::vector<int64_t>{16, 8}));
  const torch::Tensor x = Images(4, 64, 4);
  Out a = Forward(m, x), b = Forward(*f, x);
  EXPECT_LE(MaxDiff(a.logit, b.logit), 1e-4f);
  EXPECT_LE(MaxDiff(a.mask, b.mask), 1e-4f);
  ExpectOrtMatches(*f, "lowrank", x);
  auto imported = train::ImportOnnx(TempDir() + "/lowrank.onnx");
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_LE(MaxDiff(b.logit, Forward(imported->model, x).logit), 1e-4f);
  // Factorised, then pruned: the groups follow the factors.
  ChannelPruneOptions po;
  po.ratio = 0.25;
  auto pruned = PruneChannels(*f, po);
  ASSERT_TRUE(pruned.ok()) << pruned.status().ToString();
  ExpectOrtMatches(*pruned, "lowrank-pruned", x);
}

TEST(LowRankTest, EnergyAndSizeRatioChooseRanks) {
  Model m = RandomModel(V3Small(), 9);  // pre_logits 288 -> 512 among the candidates
  LowRankOptions o;
  o.size_ratio = 0.25;
  o.min_channels = 32;
  LowRankReport rep;
  auto f = FactorizeLowRank(m, o, &rep);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_FALSE(rep.layers.empty());
  bool linear = false;
  for (const auto& l : rep.layers) {
    EXPECT_LE(l.params_after, 0.25 * l.params_before + 1) << l.layer;
    linear |= l.layer == "pre_logits";
  }
  EXPECT_TRUE(linear);
  EXPECT_TRUE((*f)->pre_logits_reduce);
  ExpectOrtMatches(*f, "lowrank-v3", Images(2, 64, 5));
  // Keeping more energy keeps more rank.
  LowRankOptions lo, hi;
  lo.energy = 0.5;
  hi.energy = 0.95;
  lo.min_channels = hi.min_channels = 32;
  LowRankReport rlo, rhi;
  ASSERT_TRUE(FactorizeLowRank(m, lo, &rlo).ok());
  ASSERT_TRUE(FactorizeLowRank(m, hi, &rhi).ok());
  EXPECT_LT(rlo.params_after, rhi.params_after);
  // Bad options.
  LowRankOptions bad;
  bad.energy = 0;
  EXPECT_EQ(FactorizeLowRank(m, bad).status().code(), Code::kInvalidArgument);
  bad = LowRankOptions();
  bad.only = {"blocks.0.depthwise"};
  EXPECT_EQ(FactorizeLowRank(m, bad).status().code(), Code::kInvalidArgument);
  bad.only = {"pre_logits"};
  ASSERT_TRUE(FactorizeLowRank(*f, LowRankOptions()).ok()) << "an already factorised model is left as is";
  EXPECT_EQ(FactorizeLowRank(*f, bad).status().code(), Code::kInvalidArgument);
}

// Fake quantisation computes what int8 per-channel weights compute; with the outputs quantised
// too the logits move a little, gradients still flow, and detaching gives the float model back.
TEST(QatTest, FakeQuantisedModelIsTheInt8GridWithGradients) {
  Model m = RandomModel(V1S16(), 10);
  const torch::Tensor x = Images(4, 64, 6);
  const torch::Tensor float_logit = Forward(m, x).logit;
  // The int8 grid by hand, on a copy.
  Model grid = RandomModel(V1S16(), 10);
  {
    torch::NoGradGuard no_grad;
    for (auto& mod : grid->modules(false)) {
      if (auto* c = mod->as<train::ConvBnActImpl>()) {
        torch::Tensor& w = c->conv->weight;
        const torch::Tensor scale = (w.abs().flatten(1).amax(1) / 127.0).view({-1, 1, 1, 1});
        w.copy_(torch::clamp(torch::round(w / scale), -127, 127) * scale);
      }
    }
  }
  FakeQuantizer weights_only(/*weights=*/true, /*activations=*/false);
  EXPECT_EQ(weights_only.Attach(m), 1 + 11 * 2 + 1);  // stem, 11 x (depthwise, pointwise), mask conv
  EXPECT_LE(MaxDiff(Forward(m, x).logit, Forward(grid, x).logit), 1e-4f);
  EXPECT_GT(MaxDiff(Forward(m, x).logit, float_logit), 1e-6f) << "the grid changes something";
  weights_only.Detach();
  EXPECT_LE(MaxDiff(Forward(m, x).logit, float_logit), 1e-6f);

  FakeQuantizer both;
  both.Attach(m);
  for (auto& mod : m->modules(false)) {  // the training pass below must not move the BatchNorm statistics
    if (auto* bn = mod->as<torch::nn::BatchNorm2dImpl>()) bn->options.momentum(0.0);
  }
  m->train();
  train::ModelOutput out = m->forward(x);  // also sets the running ranges
  out.logit.sum().backward();
  const torch::Tensor& g = m->blocks[5]->project->conv->weight.grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g.abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
  // A block's output is on a 256-level grid: the uint8 QDQ pair the export puts after it.
  torch::NoGradGuard no_grad;
  m->eval();
  const int64_t levels = std::get<0>(torch::_unique(m->stem->forward(x))).numel();
  EXPECT_LE(levels, 256);
  EXPECT_GT(levels, 16);
  both.Detach();
  EXPECT_GT(std::get<0>(torch::_unique(m->stem->forward(x))).numel(), 1000) << "float outputs are not on a grid";
}

}  // namespace
}  // namespace deepscan::compress
