// backend(), setNumThreads(n) and parkThreads().
#include "args.h"
#include "ops.h"
#include "spartan/cuda_info.h"
#include "spartan/parallel.h"
#include "spartan/soft_topk.h"

#if defined(SPARTAN_BUILD_GYP)
#define SPARTAN_BUILD_SYSTEM "gyp"
#elif defined(SPARTAN_BUILD_CMAKE)
#define SPARTAN_BUILD_SYSTEM "cmake"
#else
#define SPARTAN_BUILD_SYSTEM "unknown"
#endif

namespace spartan_addon {

Napi::Value Backend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  static const spartan::CudaInfo cuda = spartan::cuda_info();  // the driver answer does not change
  Napi::Object o = Napi::Object::New(env);
  o.Set("cpu", true);
  o.Set("cudaCompiled", cuda.compiled);
  o.Set("cuda", cuda.usable);
  if (!cuda.usable) o.Set("reason", cuda.reason);
  o.Set("threads", double(spartan::num_threads()));
  o.Set("build", SPARTAN_BUILD_SYSTEM);
  o.Set("simd", spartan::simd_level_name(spartan::soft_topk_simd_level()));
  if (cuda.compiled) {
    o.Set("cudaRuntimeVersion", cuda.runtime_version);
    o.Set("cudaDriverVersion", cuda.driver_version);
  }
  Napi::Array devices = Napi::Array::New(env, cuda.devices.size());
  for (size_t i = 0; i < cuda.devices.size(); ++i) {
    const spartan::CudaDevice& d = cuda.devices[i];
    Napi::Object dev = Napi::Object::New(env);
    dev.Set("index", d.index);
    dev.Set("name", d.name);
    dev.Set("computeCapability", std::to_string(d.major) + "." + std::to_string(d.minor));
    dev.Set("totalMemory", double(d.total_memory));
    devices.Set(uint32_t(i), dev);
  }
  o.Set("devices", devices);
  return o;
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Args args(info.Env());
  double n = args.Number(info[0], "threads");
  spartan::set_num_threads(n >= 1 && n <= 256 ? size_t(n) : 0);
  return Napi::Number::New(info.Env(), double(spartan::num_threads()));
}

Napi::Value ParkThreads(const Napi::CallbackInfo& info) {
  spartan::park_threads();
  return info.Env().Undefined();
}

}  // namespace spartan_addon
