// Reading JS arguments into plain views, with coded errors. The arrays read here
// are remembered so an async call can keep them alive until it settles.
#pragma once
#include <napi.h>

#include <memory>
#include <string>
#include <vector>

#include "host_copies.h"

#include "spartan/block_ops.h"
#include "spartan/segments.h"

namespace spartan_addon {

class DeviceBuffer;
enum class ElementKind;

class Args {
 public:
  // allow_device: the op has CUDA kernels, so device buffers are accepted; otherwise a
  // device buffer is an ERR_SPARTAN_DEVICE error (never a device pointer handed to a CPU kernel).
  // async: the call will run on the libuv pool, so host arrays are read through copies
  // (host_copies.h) and the kernel never sees memory the caller could detach meanwhile.
  explicit Args(Napi::Env env, bool allow_device = false, bool async = false)
      : env_(env), allow_device_(allow_device), async_(async), copies_(async ? new HostCopies : nullptr) {}

  const float* Float32(const Napi::Value& v, const std::string& name, size_t* len);
  float* Float32Out(const Napi::Value& v, const std::string& name, size_t expected_len);
  const uint8_t* Uint8(const Napi::Value& v, const std::string& name, size_t* len);
  uint8_t* Uint8Out(const Napi::Value& v, const std::string& name, size_t expected_len);
  // A Float32Array of n costs, or a number (the cost of every entry).
  spartan::Costs Costs(const Napi::Value& v, const std::string& name, size_t n);
  double Number(const Napi::Value& v, const std::string& name);
  size_t Size(const Napi::Value& v, const std::string& name);   // integer >= 1
  size_t Index(const Napi::Value& v, const std::string& name);  // integer >= 0
  Napi::Array Array(const Napi::Value& v, const std::string& name);
  Napi::Object Object(const Napi::Value& v, const std::string& name);
  void ExpectLength(size_t got, size_t expected, const std::string& name);
  // rows, cols, b0, b1 from info[at..at+3]; the tiles must divide the matrix.
  spartan::BlockShape Shape(const Napi::CallbackInfo& info, size_t at);

  // Typed arrays and device buffers seen so far (to keep alive across an async call).
  std::vector<Napi::Object>& arrays() { return arrays_; }
  // The data pointer a kernel uses for host array t (already checked): its own, or its copy
  // in an async call; `written`: the op writes into it. Keeps t alive like the readers above.
  void* HostData(const Napi::TypedArray& t, const std::string& name, bool written);
  // A host typed array of `type` (checked: type, attached), its element count in *len, and its
  // data pointer as HostData gives it: for arrays the float / uint8 readers above do not cover.
  void* TypedData(const Napi::Value& v, const std::string& name, napi_typedarray_type type, const char* type_name,
                  bool written, size_t* len);
  // Whether the call runs on the libuv pool (Run reads it here, so the two cannot disagree).
  bool async() const { return async_; }
  // An async call's copies (null for a synchronous one), for the worker to own and copy back.
  std::unique_ptr<HostCopies> TakeCopies() { return std::move(copies_); }
  // Whether the arrays read so far are device buffers (CUDA tensors). Mixing host
  // arrays and device buffers in one call is an ERR_SPARTAN_DEVICE error.
  bool on_device() const { return place_ == Place::kDevice; }
  // True when v is a Uint8Array or a uint8 device buffer.
  static bool IsUint8(const Napi::Value& v);
  // The device buffer behind v, checked (allowed here, live, of `kind`), or nullptr when v is not one.
  DeviceBuffer* Device(const Napi::Value& v, const std::string& name, ElementKind kind);

 private:
  enum class Place { kUnknown, kHost, kDevice };
  void Note(Place p, const std::string& name);
  Napi::TypedArray Typed(const Napi::Value& v, const std::string& name, napi_typedarray_type type, const char* type_name);
  Napi::Env env_;
  bool allow_device_ = false;
  bool async_ = false;
  Place place_ = Place::kUnknown;
  std::vector<Napi::Object> arrays_;
  std::unique_ptr<HostCopies> copies_;
};

}  // namespace spartan_addon
