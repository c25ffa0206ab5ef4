// Module entry: registers the native functions. Policy lives in lib/ (TypeScript).
#include <napi.h>

#include "device_buffer.h"
#include "ops.h"

namespace spartan_addon {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("softTopKForward", Napi::Function::New(env, SoftTopKForward));
  exports.Set("softTopKBackward", Napi::Function::New(env, SoftTopKBackward));
  exports.Set("topKMask", Napi::Function::New(env, TopKMask));
  exports.Set("blockScores", Napi::Function::New(env, BlockScores));
  exports.Set("expandBlockMask", Napi::Function::New(env, ExpandBlockMask));
  exports.Set("applyMask", Napi::Function::New(env, ApplyMask));
  exports.Set("maskUpstream", Napi::Function::New(env, MaskUpstream));
  exports.Set("spartanParamGrad", Napi::Function::New(env, SpartanParamGrad));
  exports.Set("spartanElementGrad", Napi::Function::New(env, SpartanElementGrad));
  exports.Set("countChanges", Napi::Function::New(env, CountChanges));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares));
  exports.Set("sgdStep", Napi::Function::New(env, SgdStep));
  exports.Set("adamwStep", Napi::Function::New(env, AdamWStep));
  exports.Set("backend", Napi::Function::New(env, Backend));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("parkThreads", Napi::Function::New(env, ParkThreads));
  DeviceBuffer::Register(env, exports);
  exports.Set("cudaUpload", Napi::Function::New(env, CudaUpload));
  exports.Set("cudaDownload", Napi::Function::New(env, CudaDownload));
  exports.Set("cudaCopy", Napi::Function::New(env, CudaCopy));
  exports.Set("cudaSynchronize", Napi::Function::New(env, CudaSynchronize));
  exports.Set("bsrMatmulCuda", Napi::Function::New(env, BsrMatmulCuda));
  exports.Set("bsrMatmul", Napi::Function::New(env, BsrMatmul));
  return exports;
}

}  // namespace spartan_addon

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return spartan_addon::Init(env, exports); }

NODE_API_MODULE(spartan, InitAddon)
