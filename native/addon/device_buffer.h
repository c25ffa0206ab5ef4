// DeviceBuffer: a JS handle on one CUDA allocation (bytes and element kind). The
// finalizer frees it when the handle is collected; free() releases it at once.
// TypeScript's Tensor wraps it with a shape and a device name.
#pragma once
#include <napi.h>

#include <string>

namespace spartan_addon {

enum class ElementKind { kFloat32, kUint8, kInt32, kUint16 };

size_t ElementSize(ElementKind k);
const char* ElementName(ElementKind k);

class DeviceBuffer : public Napi::ObjectWrap<DeviceBuffer> {
 public:
  static void Register(Napi::Env env, Napi::Object exports);
  // The DeviceBuffer behind `v`, or nullptr when `v` is not one.
  static DeviceBuffer* From(const Napi::Value& v);

  explicit DeviceBuffer(const Napi::CallbackInfo& info);
  ~DeviceBuffer() override;

  void* data() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  ElementKind kind() const { return kind_; }
  size_t length() const { return bytes_ / ElementSize(kind_); }
  // Freed for JS once free() was called, even while a queued async call still uses it.
  bool freed() const { return ptr_ == nullptr || free_pending_; }
  // An async call holds the memory from queueing to settling; free() during that
  // time is deferred to the moment the last such call settles (main thread only).
  void Hold() { ++holds_; }
  void Unhold();

 private:
  Napi::Value Free(const Napi::CallbackInfo& info);
  Napi::Value GetBytes(const Napi::CallbackInfo& info);
  Napi::Value GetFreed(const Napi::CallbackInfo& info);
  void Release();

  void* ptr_ = nullptr;
  int holds_ = 0;
  bool free_pending_ = false;
  size_t bytes_ = 0;
  ElementKind kind_ = ElementKind::kFloat32;
  Napi::Env env_;
};

}  // namespace spartan_addon
