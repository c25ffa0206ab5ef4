// Built when CUDA is off: the addon reports why CUDA is unavailable.
#include "spartan/cuda_info.h"

namespace spartan {

CudaInfo cuda_info() {
  CudaInfo info;
  info.reason = "not compiled: the addon was built without CUDA (nvcc not found or SPARTAN_CUDA=off)";
  return info;
}

}  // namespace spartan
