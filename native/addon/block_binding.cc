// blockScores(theta, rows, cols, b0, b1, out, async)
// expandBlockMask(mask, rows, cols, b0, b1, out, async)   mask/out: Float32Array or Uint8Array
// applyMask(theta, mask, hard, rows, cols, b0, b1, perBlock, out, async)
#include <memory>

#include "args.h"
#include "errors.h"
#include "ops.h"
#include "run.h"
#include "spartan/block_ops.h"
#include "spartan/cuda_ops.h"

namespace spartan_addon {

Napi::Value BlockScores(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true, /*async=*/info[6].ToBoolean());
  size_t n = 0;
  const float* theta = args.Float32(info[0], "theta", &n);
  spartan::BlockShape s = args.Shape(info, 1);
  args.ExpectLength(n, s.size(), "theta");
  float* out = args.Float32Out(info[5], "out", s.num_blocks());
  return Run(env, args, ArgNames{}, [=, dev = args.on_device()] { return dev ? spartan::cuda::block_scores(theta, s, out) : spartan::block_scores(theta, s, out); },
             [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value ExpandBlockMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true, /*async=*/info[6].ToBoolean());
  spartan::BlockShape s = args.Shape(info, 1);
  size_t n = 0;
  Work work;
  if (Args::IsUint8(info[0])) {
    const uint8_t* m = args.Uint8(info[0], "blockMask", &n);
    args.ExpectLength(n, s.num_blocks(), "blockMask");
    uint8_t* out = args.Uint8Out(info[5], "out", s.size());
    work = [=, dev = args.on_device()] {
      if (dev) return spartan::cuda::expand_block_mask(m, s, out);
      return spartan::expand_block_mask(m, s, out);
    };
  } else {
    const float* m = args.Float32(info[0], "blockMask", &n);
    args.ExpectLength(n, s.num_blocks(), "blockMask");
    float* out = args.Float32Out(info[5], "out", s.size());
    work = [=, dev = args.on_device()] {
      if (dev) return spartan::cuda::expand_block_mask(m, s, out);
      return spartan::expand_block_mask(m, s, out);
    };
  }
  return Run(env, args, ArgNames{}, work,
             [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value ApplyMask(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/true, /*async=*/info[9].ToBoolean());
  size_t n = 0, nm = 0, nh = 0;
  const float* theta = args.Float32(info[0], "theta", &n);
  spartan::BlockShape s = args.Shape(info, 3);
  args.ExpectLength(n, s.size(), "theta");
  spartan::MaskView mask;
  mask.per_block = info[7].ToBoolean();
  const size_t expected = mask.per_block ? s.num_blocks() : s.size();
  if (Args::IsUint8(info[1]))
    mask.hard_only = args.Uint8(info[1], "mask", &nm);
  else
    mask.soft = args.Float32(info[1], "mask", &nm);
  args.ExpectLength(nm, expected, "mask");
  const uint8_t* hard = nullptr;
  if (!info[2].IsUndefined() && !info[2].IsNull()) {
    hard = args.Uint8(info[2], "hard", &nh);
    args.ExpectLength(nh, expected, "hard");
  }
  float* out = args.Float32Out(info[8], "out", s.size());
  return Run(env, args, ArgNames{},
             [=, dev = args.on_device()] {
               return dev ? spartan::cuda::apply_mask(theta, mask, hard, s, out) : spartan::apply_mask(theta, mask, hard, s, out);
             },
             [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

}  // namespace spartan_addon
