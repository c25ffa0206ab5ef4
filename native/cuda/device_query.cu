// Device discovery with the statically linked CUDA runtime. With no driver
// installed, cudaGetDeviceCount fails cleanly and the addon still loads.
#include <cuda_runtime.h>

#include <string>

#include "spartan/cuda_info.h"

namespace spartan {

CudaInfo cuda_info() {
  CudaInfo info;
  info.compiled = true;
  cudaRuntimeGetVersion(&info.runtime_version);
  cudaError_t derr = cudaDriverGetVersion(&info.driver_version);
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaErrorNoDevice || (err == cudaSuccess && count == 0)) {
    info.reason = "no device: the CUDA driver found no GPU";
    cudaGetLastError();
    return info;
  }
  if (err != cudaSuccess || derr != cudaSuccess || info.driver_version == 0) {
    info.reason = std::string("no driver: ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) + ")";
    cudaGetLastError();
    return info;
  }
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop;
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    info.devices.push_back({i, prop.name, prop.major, prop.minor, prop.totalGlobalMem});
  }
  info.usable = !info.devices.empty();
  if (!info.usable) info.reason = "no device: no GPU could be queried";
  return info;
}

}  // namespace spartan
