// topKMask(segments, groups, async, segmented)
//   segments: [{ values, costs?: Float32Array | number, out: Uint8Array }]
//   groups:   [{ first, count, k, bandLo?, bandHi?, margin? }] (a speed hint: spartan/hard_topk.h)
//   returns   [{ kept, keptCost, threshold, nextLo, nextHi, hintHeld }]
#include <memory>
#include <vector>

#include "args.h"
#include "ops.h"
#include "run.h"
#include "spartan/cuda_ops.h"
#include "spartan/hard_topk.h"

namespace spartan_addon {

Napi::Value TopKMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool async = info[2].ToBoolean(), segmented = info[3].ToBoolean();
  Args args(env, /*allow_device=*/true, async);
  Napi::Array js_segs = args.Array(info[0], "segments");
  Napi::Array js_groups = args.Array(info[1], "groups");
  auto segs = std::make_shared<std::vector<spartan::TopKSegment>>(js_segs.Length());
  for (uint32_t i = 0; i < js_segs.Length(); ++i) {
    Napi::Object o = args.Object(js_segs.Get(i), "segments[" + std::to_string(i) + "]");
    const std::string p = segmented ? "segments[" + std::to_string(i) + "]." : "";
    spartan::TopKSegment& s = (*segs)[i];
    s.values = args.Float32(o.Get("values"), p + "values", &s.n);
    s.costs = args.Costs(o.Get("costs"), p + "costs", s.n);
    s.out = args.Uint8Out(o.Get("out"), p + "out", s.n);
  }
  auto groups = std::make_shared<std::vector<spartan::TopKGroup>>(js_groups.Length());
  for (uint32_t i = 0; i < js_groups.Length(); ++i) {
    Napi::Object o = args.Object(js_groups.Get(i), "groups[" + std::to_string(i) + "]");
    spartan::TopKGroup& g = (*groups)[i];
    g.first = args.Index(o.Get("first"), "first");
    g.count = args.Size(o.Get("count"), "count");
    g.k = args.Number(o.Get("k"), "k");
    Napi::Value lo = o.Get("bandLo"), hi = o.Get("bandHi"), margin = o.Get("margin");
    if (lo.IsNumber() && hi.IsNumber()) {  // a hint only: anything else means none
      g.hint.lo = float(lo.As<Napi::Number>().DoubleValue());
      g.hint.hi = float(hi.As<Napi::Number>().DoubleValue());
    }
    if (margin.IsNumber()) g.hint.margin = margin.As<Napi::Number>().DoubleValue();
  }
  auto results = std::make_shared<std::vector<spartan::TopKResult>>(groups->size());
  return Run(
      env, args, ArgNames{segmented},
      [segs, groups, results, dev = args.on_device()] {
        auto op = dev ? spartan::cuda::topk_mask : spartan::topk_mask;
        return op(segs->data(), segs->size(), groups->data(), groups->size(), results->data());
      },
      [results](Napi::Env env) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, results->size());
        for (size_t i = 0; i < results->size(); ++i) {
          Napi::Object o = Napi::Object::New(env);
          o.Set("kept", double((*results)[i].kept));
          o.Set("keptCost", (*results)[i].kept_cost);
          o.Set("threshold", (*results)[i].threshold);
          o.Set("nextLo", double((*results)[i].next_lo));
          o.Set("nextHi", double((*results)[i].next_hi));
          o.Set("hintHeld", (*results)[i].hint_held);
          arr.Set(uint32_t(i), o);
        }
        return arr;
      });
}

}  // namespace spartan_addon
