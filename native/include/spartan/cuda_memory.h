// Device memory for CUDA tensors: plain pointers and Status codes (kCuda carries
// the cudaError_t). Every call is ordered on the legacy default stream, so a copy
// after a kernel sees its results. Built without CUDA, every call returns kCuda
// with cuda_error = -1.
#pragma once
#include <cstddef>

#include "spartan/status.h"

namespace spartan {
namespace cuda {

Status malloc_device(size_t bytes, void** out);
void free_device(void* p);  // never fails loudly: used from finalizers
Status copy_to_device(void* dst, const void* src, size_t bytes);
Status copy_to_host(void* dst, const void* src, size_t bytes);
Status copy_on_device(void* dst, const void* src, size_t bytes);
Status synchronize();
// "cudaErrorMemoryAllocation" etc.; "not compiled" for -1.
const char* error_name(int cuda_error);
const char* error_string(int cuda_error);

}  // namespace cuda
}  // namespace spartan
