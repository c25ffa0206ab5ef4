// softTopKForward(segments, groups, async, segmented) and
// softTopKBackward(segments, groups, async, segmented).
//   segments: [{ values, costs?: Float32Array | number, out }] (forward)
//             [{ mask, grad, costs?, out }]                     (backward)
//   groups:   [{ first, count, k, beta, lambda? }] / [{ first, count, beta }]
#include <memory>
#include <vector>

#include "args.h"
#include "ops.h"
#include "run.h"
#include "spartan/cuda_ops.h"
#include "spartan/soft_topk.h"

namespace spartan_addon {

static std::string Prefix(bool segmented, uint32_t i) {
  return segmented ? "segments[" + std::to_string(i) + "]." : "";
}

Napi::Value SoftTopKForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool async = info[2].ToBoolean(), segmented = info[3].ToBoolean();
  Args args(env, /*allow_device=*/true, async);
  Napi::Array js_segs = args.Array(info[0], "segments");
  Napi::Array js_groups = args.Array(info[1], "groups");
  auto segs = std::make_shared<std::vector<spartan::SoftTopKSegment>>(js_segs.Length());
  for (uint32_t i = 0; i < js_segs.Length(); ++i) {
    Napi::Object o = args.Object(js_segs.Get(i), "segments[" + std::to_string(i) + "]");
    const std::string p = Prefix(segmented, i);
    spartan::SoftTopKSegment& s = (*segs)[i];
    s.values = args.Float32(o.Get("values"), p + "values", &s.n);
    s.costs = args.Costs(o.Get("costs"), p + "costs", s.n);
    s.out = args.Float32Out(o.Get("out"), p + "out", s.n);
  }
  auto groups = std::make_shared<std::vector<spartan::SoftTopKGroup>>(js_groups.Length());
  for (uint32_t i = 0; i < js_groups.Length(); ++i) {
    Napi::Object o = args.Object(js_groups.Get(i), "groups[" + std::to_string(i) + "]");
    spartan::SoftTopKGroup& g = (*groups)[i];
    g.first = args.Index(o.Get("first"), "first");
    g.count = args.Size(o.Get("count"), "count");
    g.k = args.Number(o.Get("k"), "k");
    g.beta = args.Number(o.Get("beta"), "beta");
    Napi::Value lam = o.Get("lambda");
    if (!lam.IsUndefined() && !lam.IsNull()) {
      g.warm_lambda = args.Number(lam, "lambda");
      g.warm = true;
    }
  }
  auto results = std::make_shared<std::vector<spartan::SoftTopKResult>>(groups->size());
  return Run(
      env, args, ArgNames{segmented},
      [segs, groups, results, dev = args.on_device()] {
        auto op = dev ? spartan::cuda::soft_topk_forward : spartan::soft_topk_forward;
        return op(segs->data(), segs->size(), groups->data(), groups->size(), results->data());
      },
      [results](Napi::Env env) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); ++i) {
          const spartan::SoftTopKResult& r = (*results)[i];
          Napi::Object o = Napi::Object::New(env);
          o.Set("lambda", r.lambda);
          o.Set("mass", r.mass);
          o.Set("totalCost", r.total_cost);
          o.Set("iterations", r.iterations);
          o.Set("passes", r.passes);
          o.Set("converged", r.converged);
          arr.Set(uint32_t(i), o);
        }
        return arr;
      });
}

Napi::Value SoftTopKBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool async = info[2].ToBoolean(), segmented = info[3].ToBoolean();
  Args args(env, /*allow_device=*/true, async);
  Napi::Array js_segs = args.Array(info[0], "segments");
  Napi::Array js_groups = args.Array(info[1], "groups");
  auto segs = std::make_shared<std::vector<spartan::SoftTopKBackwardSegment>>(js_segs.Length());
  for (uint32_t i = 0; i < js_segs.Length(); ++i) {
    Napi::Object o = args.Object(js_segs.Get(i), "segments[" + std::to_string(i) + "]");
    const std::string p = Prefix(segmented, i);
    spartan::SoftTopKBackwardSegment& s = (*segs)[i];
    s.mask = args.Float32(o.Get("mask"), p + "mask", &s.n);
    size_t ng = 0;
    s.grad = args.Float32(o.Get("grad"), p + "gradMask", &ng);
    args.ExpectLength(ng, s.n, p + "gradMask");
    s.costs = args.Costs(o.Get("costs"), p + "costs", s.n);
    s.out = args.Float32Out(o.Get("out"), p + "out", s.n);
  }
  auto groups = std::make_shared<std::vector<spartan::SoftTopKBackwardGroup>>(js_groups.Length());
  for (uint32_t i = 0; i < js_groups.Length(); ++i) {
    Napi::Object o = args.Object(js_groups.Get(i), "groups[" + std::to_string(i) + "]");
    spartan::SoftTopKBackwardGroup& g = (*groups)[i];
    g.first = args.Index(o.Get("first"), "first");
    g.count = args.Size(o.Get("count"), "count");
    g.beta = args.Number(o.Get("beta"), "beta");
  }
  return Run(
      env, args, ArgNames{segmented},
      [segs, groups, dev = args.on_device()] {
        auto op = dev ? spartan::cuda::soft_topk_backward : spartan::soft_topk_backward;
        return op(segs->data(), segs->size(), groups->data(), groups->size());
      },
      [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace spartan_addon
