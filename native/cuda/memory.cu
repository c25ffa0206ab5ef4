// Device memory and copies for CUDA tensors (legacy default stream: ordered with every kernel).
#include <cuda_runtime.h>

#include "common.cuh"
#include "spartan/cuda_memory.h"

namespace spartan {
namespace cuda {

Status malloc_device(size_t bytes, void** out) {
  *out = nullptr;
  SPARTAN_CUDA_TRY(cudaMalloc(out, bytes ? bytes : 4));
  return Status::Ok();
}

void free_device(void* p) {
  if (p) cudaFree(p);
  cudaGetLastError();
}

Status copy_to_device(void* dst, const void* src, size_t bytes) {
  if (bytes) SPARTAN_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  return Status::Ok();
}

Status copy_to_host(void* dst, const void* src, size_t bytes) {
  if (bytes) SPARTAN_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  return Status::Ok();
}

Status copy_on_device(void* dst, const void* src, size_t bytes) {
  if (bytes) SPARTAN_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  return Status::Ok();
}

Status synchronize() {
  SPARTAN_CUDA_TRY(cudaDeviceSynchronize());
  return Status::Ok();
}

const char* error_name(int e) { return e < 0 ? "not compiled" : cudaGetErrorName(cudaError_t(e)); }
const char* error_string(int e) { return e < 0 ? "the addon was built without CUDA" : cudaGetErrorString(cudaError_t(e)); }

}  // namespace cuda
}  // namespace spartan
