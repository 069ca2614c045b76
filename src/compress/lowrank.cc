#include "compress/lowrank.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include <torch/linalg.h>

namespace deepscan::compress {
namespace {

struct Svd {
  torch::Tensor u, s, vh;  // double, s descending
};

Svd Decompose(const torch::Tensor& a) {
  auto [u, s, vh] = torch::linalg_svd(a.detach().to(torch::kDouble), /*full_matrices=*/false, c10::nullopt);
  return {u, s, vh};
}

// Smallest r keeping `energy` of sum(s^2).
int64_t RankForEnergy(const torch::Tensor& s, double energy) {
  const torch::Tensor e = (s * s).cumsum(0) / (s * s).sum();
  const int64_t n = s.size(0);
  for (int64_t r = 0; r < n; ++r) {
    if (e[r].item<double>() >= energy - 1e-12) return r + 1;
  }
  return n;
}

double KeptEnergy(const torch::Tensor& s, int64_t r) {
  const torch::Tensor e = s * s;
  return (e.slice(0, 0, r).sum() / e.sum()).item<double>();
}

int64_t RoundUp(int64_t r, int64_t multiple, int64_t limit) {
  return std::min(limit, std::max<int64_t>(multiple, (r + multiple - 1) / multiple * multiple));
}
int64_t RoundDown(int64_t r, int64_t multiple) { return std::max<int64_t>(multiple, r / multiple * multiple); }

// The factors of one layer, by the new model's tensor names.
struct Factorised {
  LayerRank rank;
  std::map<std::string, torch::Tensor> tensors;
};

// W [out, in] (a 1x1 conv's or a linear's): {reduce [r, in], second [out, r]} or nothing if not smaller.
std::optional<Factorised> FactorMatrix(const torch::Tensor& w2, const LowRankOptions& o, LayerRank base) {
  const int64_t out = w2.size(0), in = w2.size(1);
  const Svd d = Decompose(w2);
  const int64_t full = d.s.size(0);
  int64_t r = o.size_ratio > 0 ? RoundDown(static_cast<int64_t>(o.size_ratio * in * out / (in + out)), o.multiple)
                               : RoundUp(RankForEnergy(d.s, o.energy), o.multiple, full);
  r = std::min(r, full);
  if (r * (in + out) >= in * out) return std::nullopt;
  const torch::Tensor root = torch::sqrt(d.s.slice(0, 0, r));
  Factorised f;
  f.rank = base;
  f.rank.rank = {r};
  f.rank.energy = KeptEnergy(d.s, r);
  f.rank.params_before = in * out;
  f.rank.params_after = r * (in + out);
  f.tensors["reduce"] = (root.unsqueeze(1) * d.vh.slice(0, 0, r)).to(torch::kFloat);   // [r, in]
  f.tensors["second"] = (d.u.slice(1, 0, r) * root.unsqueeze(0)).to(torch::kFloat);    // [out, r]
  return f;
}

// Tucker-2 of W [out, in, k, k]: {reduce [r_in, in, 1, 1], core [r_out, r_in, k, k], restore [out, r_out, 1, 1]}.
std::optional<Factorised> FactorTucker(const torch::Tensor& w, const LowRankOptions& o, LayerRank base) {
  const int64_t out = w.size(0), in = w.size(1), kh = w.size(2), kw = w.size(3);
  const torch::Tensor wd = w.detach().to(torch::kDouble);
  const Svd mode0 = Decompose(wd.reshape({out, in * kh * kw}));
  const Svd mode1 = Decompose(wd.permute({1, 0, 2, 3}).reshape({in, out * kh * kw}));
  const int64_t full_out = mode0.s.size(0), full_in = mode1.s.size(0);
  auto params = [&](int64_t ri, int64_t ro) { return in * ri + ri * ro * kh * kw + ro * out; };
  int64_t r_in, r_out;
  if (o.size_ratio > 0) {
    // The same share a of both sides, the largest whose factors fit the budget.
    double lo = 0, hi = 1;
    for (int it = 0; it < 40; ++it) {
      const double a = (lo + hi) / 2;
      const auto ri = static_cast<int64_t>(a * in), ro = static_cast<int64_t>(a * out);
      (params(ri, ro) <= o.size_ratio * out * in * kh * kw ? lo : hi) = a;
    }
    r_in = std::min(full_in, RoundDown(static_cast<int64_t>(lo * in), o.multiple));
    r_out = std::min(full_out, RoundDown(static_cast<int64_t>(lo * out), o.multiple));
  } else {
    r_in = RoundUp(RankForEnergy(mode1.s, o.energy), o.multiple, full_in);
    r_out = RoundUp(RankForEnergy(mode0.s, o.energy), o.multiple, full_out);
  }
  if (params(r_in, r_out) >= out * in * kh * kw) return std::nullopt;
  const torch::Tensor u_out = mode0.u.slice(1, 0, r_out), u_in = mode1.u.slice(1, 0, r_in);
  Factorised f;
  f.rank = base;
  f.rank.rank = {r_in, r_out};
  f.rank.energy = std::min(KeptEnergy(mode0.s, r_out), KeptEnergy(mode1.s, r_in));
  f.rank.params_before = out * in * kh * kw;
  f.rank.params_after = params(r_in, r_out);
  f.tensors["reduce"] = u_in.t().reshape({r_in, in, 1, 1}).to(torch::kFloat);
  f.tensors["core"] = torch::einsum("oikl,or,is->rskl", {wd, u_out, u_in}).to(torch::kFloat);
  f.tensors["restore"] = u_out.reshape({out, r_out, 1, 1}).to(torch::kFloat);
  return f;
}

}  // namespace

Result<train::Model> FactorizeLowRank(const train::Model& model, const LowRankOptions& o, LowRankReport* report) {
  if (o.size_ratio > 0 ? !(o.size_ratio < 1) : !(o.energy > 0 && o.energy <= 1)) {
    return Status::InvalidArgument("energy must be in (0, 1] and size_ratio in (0, 1)");
  }
  if (o.size_ratio < 0) return Status::InvalidArgument("size_ratio must be in (0, 1)");
  if (o.multiple < 1 || o.min_channels < 1) return Status::InvalidArgument("multiple and min_channels must be >= 1");
  torch::NoGradGuard no_grad;
  const bool all = o.only.empty();
  auto wanted = [&](const std::string& path) {
    return all || std::find(o.only.begin(), o.only.end(), path) != o.only.end();
  };
  train::ModelSpec spec = model->spec();
  std::map<std::string, torch::Tensor> factors;  // new tensor name -> value
  std::vector<std::string> found;
  LowRankReport rep;
  for (const auto& item : model->named_modules("", /*include_self=*/false)) {
    const std::string& path = item.key();
    LayerRank base;
    base.layer = path;
    std::optional<Factorised> f;
    if (const auto* m = item.value()->as<train::ConvBnActImpl>()) {
      if (!wanted(path)) continue;
      const auto& co = m->conv->options;
      if (m->reduce) {
        if (!all) return Status::InvalidArgument(path + " is already factorised");
        continue;
      }
      const torch::Tensor& w = m->conv->weight;
      if (co.groups() != 1 || std::min(w.size(0), w.size(1)) < o.min_channels) continue;
      found.push_back(path);
      base.shape = w.sizes().vec();
      const bool pointwise = w.size(2) == 1 && w.size(3) == 1;
      f = pointwise ? FactorMatrix(w.flatten(1), o, base) : FactorTucker(w, o, base);
      if (!f) continue;
      if (pointwise) {
        factors[path + ".reduce.weight"] = f->tensors["reduce"].reshape({-1, w.size(1), 1, 1});
        factors[path + ".conv.weight"] = f->tensors["second"].reshape({w.size(0), -1, 1, 1});
      } else {
        factors[path + ".reduce.weight"] = f->tensors["reduce"];
        factors[path + ".conv.weight"] = f->tensors["core"];
        factors[path + ".restore.weight"] = f->tensors["restore"];
      }
    } else if (const auto* l = item.value()->as<torch::nn::LinearImpl>()) {
      if (path != "pre_logits" || !wanted(path)) continue;
      if (model->pre_logits_reduce) {
        if (!all) return Status::InvalidArgument("pre_logits is already factorised");
        continue;
      }
      if (std::min(l->weight.size(0), l->weight.size(1)) < o.min_channels) continue;
      found.push_back(path);
      base.shape = l->weight.sizes().vec();
      f = FactorMatrix(l->weight, o, base);
      if (!f) continue;
      factors["pre_logits_reduce.weight"] = f->tensors["reduce"];
      factors["pre_logits.weight"] = f->tensors["second"];
    } else {
      continue;
    }
    spec.ranks[path] = f->rank.rank;
    rep.layers.push_back(f->rank);
  }
  for (const std::string& p : o.only) {
    if (std::find(found.begin(), found.end(), p) == found.end()) {
      return Status::InvalidArgument("'" + p + "' is not a factorisable layer (a 1x1 or k x k full conv with both sides >= " +
                                     std::to_string(o.min_channels) + ", or pre_logits)");
    }
  }
  ASSIGN_OR_RETURN(train::Model out, train::MakeModel(spec));
  std::map<std::string, torch::Tensor> src;
  for (const auto& p : model->named_parameters()) src[p.key()] = p.value();
  for (const auto& b : model->named_buffers()) src[b.key()] = b.value();
  auto fill = [&](const std::string& name, torch::Tensor& dst) -> Status {
    auto f = factors.find(name);
    const torch::Tensor* t = f != factors.end() ? &f->second : nullptr;
    auto s = src.find(name);
    if (!t && s != src.end()) t = &s->second;
    if (!t || t->sizes() != dst.sizes()) return Status::Internal("low-rank copy: '" + name + "' does not fit");
    dst.copy_(*t);
    return Status::Ok();
  };
  for (auto& p : out->named_parameters()) RETURN_IF_ERROR(fill(p.key(), p.value()));
  for (auto& b : out->named_buffers()) RETURN_IF_ERROR(fill(b.key(), b.value()));
  out->train(model->is_training());
  rep.params_before = train::CountParameters(*model);
  rep.params_after = train::CountParameters(*out);
  if (report != nullptr) *report = rep;
  return out;
}

}  // namespace deepscan::compress
