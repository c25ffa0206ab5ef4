// The exported functions, one family per file.
#pragma once
#include <napi.h>

namespace spartan_addon {

Napi::Value SoftTopKForward(const Napi::CallbackInfo& info);
Napi::Value SoftTopKBackward(const Napi::CallbackInfo& info);
Napi::Value TopKMask(const Napi::CallbackInfo& info);
Napi::Value BlockScores(const Napi::CallbackInfo& info);
Napi::Value ExpandBlockMask(const Napi::CallbackInfo& info);
Napi::Value ApplyMask(const Napi::CallbackInfo& info);
Napi::Value MaskUpstream(const Napi::CallbackInfo& info);
Napi::Value SpartanParamGrad(const Napi::CallbackInfo& info);
Napi::Value SpartanElementGrad(const Napi::CallbackInfo& info);
Napi::Value CountChanges(const Napi::CallbackInfo& info);
Napi::Value SumSquares(const Napi::CallbackInfo& info);
Napi::Value SgdStep(const Napi::CallbackInfo& info);
Napi::Value AdamWStep(const Napi::CallbackInfo& info);
Napi::Value Backend(const Napi::CallbackInfo& info);
Napi::Value SetNumThreads(const Napi::CallbackInfo& info);
Napi::Value ParkThreads(const Napi::CallbackInfo& info);
Napi::Value CudaUpload(const Napi::CallbackInfo& info);
Napi::Value CudaDownload(const Napi::CallbackInfo& info);
Napi::Value CudaCopy(const Napi::CallbackInfo& info);
Napi::Value CudaSynchronize(const Napi::CallbackInfo& info);
Napi::Value BsrMatmulCuda(const Napi::CallbackInfo& info);
Napi::Value BsrMatmul(const Napi::CallbackInfo& info);

}  // namespace spartan_addon
