// maskUpstream(gradW, theta, rows, cols, b0, b1, out)
// spartanParamGrad(gradW, theta, mask, vjp, rows, cols, b0, b1, out)
// spartanElementGrad(segments: [{ gradW, theta, mask, hard?, out }], groups: [{ first, count, beta }])
// sumSquares(x, name) -> number
// sgdStep(theta, grad, buf | null, config) / adamwStep(theta, grad, m, v, config)
// Every array may instead be a CUDA device buffer (all of one call on one device).
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "args.h"
#include "errors.h"
#include "ops.h"
#include "spartan/cuda_ops.h"
#include "spartan/spartan_grad.h"
#include "spartan/sparse_update.h"

namespace spartan_addon {
namespace {

double Field(Args& args, const Napi::Object& o, const char* name, double fallback) {
  Napi::Value v = o.Get(name);
  return v.IsUndefined() ? fallback : args.Number(v, name);
}

// theta (info[0], updated in place) and its gradient (info[1]) of the same length.
float* ParamAndGrad(Args& args, const Napi::CallbackInfo& info, size_t* n, const float** grad) {
  size_t ng = 0;
  float* theta = const_cast<float*>(args.Float32(info[0], "theta", n));
  *grad = args.Float32(info[1], "grad", &ng);
  args.ExpectLength(ng, *n, "grad");
  return theta;
}

// Runs the CUDA form when the call's buffers live on the device (its Status thrown as a JS
// error), else the CPU form (which may return a Status too, or nothing).
template <class OnDevice, class OnHost>
void Dispatch(Args& args, Napi::Env env, OnDevice on_device, OnHost on_host) {
  spartan::Status st = spartan::Status::Ok();
  if (args.on_device()) {
    st = on_device();
  } else if constexpr (std::is_same_v<decltype(on_host()), spartan::Status>) {
    st = on_host();
  } else {
    on_host();
  }
  if (!st.ok()) throw StatusError(env, st, ArgNames{});
}

}  // namespace

Napi::Value MaskUpstream(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true);
  size_t n = 0, nt = 0;
  const float* gw = args.Float32(info[0], "gradW", &n);
  const float* theta = args.Float32(info[1], "theta", &nt);
  spartan::BlockShape s = args.Shape(info, 2);
  args.ExpectLength(n, s.size(), "gradW");
  args.ExpectLength(nt, s.size(), "theta");
  float* out = args.Float32Out(info[6], "out", s.num_blocks());
  Dispatch(args, env, [&] { return spartan::cuda::mask_upstream(gw, theta, s, out); },
           [&] { return spartan::mask_upstream(gw, theta, s, out); });
  return env.Undefined();
}

Napi::Value SpartanParamGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true);
  size_t n = 0, nt = 0, nm = 0, nv = 0;
  const float* gw = args.Float32(info[0], "gradW", &n);
  const float* theta = args.Float32(info[1], "theta", &nt);
  const float* m = args.Float32(info[2], "mask", &nm);
  const float* vjp = args.Float32(info[3], "vjp", &nv);
  spartan::BlockShape s = args.Shape(info, 4);
  args.ExpectLength(n, s.size(), "gradW");
  args.ExpectLength(nt, s.size(), "theta");
  args.ExpectLength(nm, s.num_blocks(), "mask");
  args.ExpectLength(nv, s.num_blocks(), "vjp");
  float* out = args.Float32Out(info[8], "out", s.size());
  Dispatch(args, env, [&] { return spartan::cuda::spartan_param_grad(gw, theta, m, vjp, s, out); },
           [&] { spartan::spartan_param_grad(gw, theta, m, vjp, s, out); });
  return env.Undefined();
}

Napi::Value SpartanElementGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/false);
  Napi::Array js_segs = args.Array(info[0], "segments");
  Napi::Array js_groups = args.Array(info[1], "groups");
  std::vector<spartan::SpartanGradSegment> segs(js_segs.Length());
  for (uint32_t i = 0; i < js_segs.Length(); ++i) {
    const std::string p = "segments[" + std::to_string(i) + "].";
    Napi::Object o = args.Object(js_segs.Get(i), "segments[" + std::to_string(i) + "]");
    spartan::SpartanGradSegment& s = segs[i];
    size_t nt = 0, nm = 0;
    s.grad_w = args.Float32(o.Get("gradW"), p + "gradW", &s.n);
    s.theta = args.Float32(o.Get("theta"), p + "theta", &nt);
    s.mask = args.Float32(o.Get("mask"), p + "mask", &nm);
    args.ExpectLength(nt, s.n, p + "theta");
    args.ExpectLength(nm, s.n, p + "mask");
    Napi::Value hard = o.Get("hard");
    if (!hard.IsUndefined() && !hard.IsNull()) {
      size_t nh = 0;
      s.hard = args.Uint8(hard, p + "hard", &nh);
      args.ExpectLength(nh, s.n, p + "hard");
    }
    s.out = args.Float32Out(o.Get("out"), p + "out", s.n);
  }
  std::vector<spartan::SpartanGradGroup> groups(js_groups.Length());
  for (uint32_t i = 0; i < js_groups.Length(); ++i) {
    Napi::Object o = args.Object(js_groups.Get(i), "groups[" + std::to_string(i) + "]");
    groups[i].first = args.Index(o.Get("first"), "first");
    groups[i].count = args.Size(o.Get("count"), "count");
    groups[i].beta = args.Number(o.Get("beta"), "beta");
  }
  Napi::Float64Array sums = Napi::Float64Array::New(env, segs.size());
  spartan::Status st = spartan::spartan_element_grad(segs.data(), segs.size(), groups.data(), groups.size(), sums.Data());
  if (!st.ok()) throw StatusError(env, st, ArgNames{true});
  return sums;  // sum(out^2) per segment
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true);
  size_t n = 0;
  const float* x = args.Float32(info[0], "x", &n);
  double r = 0;
  Dispatch(args, env, [&] { return spartan::cuda::sum_squares(x, n, &r, spartan::Arg::kGrad); },
           [&] { return spartan::sum_squares(x, n, &r, spartan::Arg::kGrad); });
  return Napi::Number::New(env, r);
}

Napi::Value CountChanges(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true);
  size_t n = 0, nb = 0;
  const uint8_t* a = args.Uint8(info[0], "a", &n);
  const uint8_t* b = args.Uint8(info[1], "b", &nb);
  args.ExpectLength(nb, n, "b");
  size_t changes = 0;
  Dispatch(args, env, [&] { return spartan::cuda::count_changes(a, b, n, &changes); },
           [&] { changes = spartan::count_changes(a, b, n); });
  return Napi::Number::New(env, double(changes));
}

Napi::Value SgdStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true);
  size_t n = 0;
  const float* g = nullptr;
  float* theta = ParamAndGrad(args, info, &n, &g);
  Napi::Object o = args.Object(info[3], "config");
  spartan::SgdConfig c;
  c.lr = Field(args, o, "lr", c.lr);
  c.momentum = Field(args, o, "momentum", 0);
  c.dampening = Field(args, o, "dampening", 0);
  c.weight_decay = Field(args, o, "weightDecay", 0);
  c.grad_scale = Field(args, o, "gradScale", 1);
  c.nesterov = o.Get("nesterov").ToBoolean();
  c.first_step = o.Get("firstStep").ToBoolean();
  float* buf = nullptr;
  if (c.momentum != 0) {
    buf = args.Float32Out(info[2], "momentumBuffer", n);
  }
  Dispatch(args, env, [&] { return spartan::cuda::sgd_step(theta, g, buf, n, c); },
           [&] { spartan::sgd_step(theta, g, buf, n, c); });
  return env.Undefined();
}

Napi::Value AdamWStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true);
  size_t n = 0;
  const float* g = nullptr;
  float* theta = ParamAndGrad(args, info, &n, &g);
  float* m = args.Float32Out(info[2], "exp_avg", n);
  float* v = args.Float32Out(info[3], "exp_avg_sq", n);
  Napi::Object o = args.Object(info[4], "config");
  spartan::AdamWConfig c;
  c.lr = Field(args, o, "lr", c.lr);
  c.beta1 = Field(args, o, "beta1", c.beta1);
  c.beta2 = Field(args, o, "beta2", c.beta2);
  c.eps = Field(args, o, "eps", c.eps);
  c.weight_decay = Field(args, o, "weightDecay", c.weight_decay);
  c.grad_scale = Field(args, o, "gradScale", 1);
  c.step = int64_t(Field(args, o, "step", 1));
  Dispatch(args, env, [&] { return spartan::cuda::adamw_step(theta, g, m, v, n, c); },
           [&] { spartan::adamw_step(theta, g, m, v, n, c); });
  return env.Undefined();
}

}  // namespace spartan_addon
