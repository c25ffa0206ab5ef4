// What the CUDA side of the build can do on this machine.
#pragma once
#include <string>
#include <vector>

namespace spartan {

struct CudaDevice {
  int index = 0;
  std::string name;
  int major = 0, minor = 0;
  size_t total_memory = 0;
};

struct CudaInfo {
  bool compiled = false;  // the addon was built with CUDA kernels
  bool usable = false;    // a driver and at least one device answered
  std::string reason;     // why not usable: "not compiled", "no driver: ...", "no device"
  int runtime_version = 0;
  int driver_version = 0;
  std::vector<CudaDevice> devices;
};

CudaInfo cuda_info();

}  // namespace spartan
