// DeviceBuffer and the copies between host arrays and device memory:
//   new DeviceBuffer(bytes, kind)            kind "float32" | "uint8" | "int32" | "uint16"
//   cudaUpload(buffer, typedArray, async)    host -> device (lengths must match)
//   cudaDownload(buffer, typedArray, async)  device -> host
//   cudaCopy(dst, src)                        device -> device
//   cudaSynchronize()
#include "device_buffer.h"

#include <memory>

#include "args.h"
#include "views.h"
#include "errors.h"
#include "ops.h"
#include "run.h"
#include "spartan/cuda_memory.h"

namespace spartan_addon {

size_t ElementSize(ElementKind k) {
  return k == ElementKind::kUint8 ? 1 : k == ElementKind::kUint16 ? 2 : 4;
}
const char* ElementName(ElementKind k) {
  switch (k) {
    case ElementKind::kFloat32: return "float32";
    case ElementKind::kUint8: return "uint8";
    case ElementKind::kInt32: return "int32";
    default: return "uint16";
  }
}

namespace {
struct Constructors {
  Napi::FunctionReference device_buffer;
};
}  // namespace

void DeviceBuffer::Register(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = DefineClass(env, "DeviceBuffer",
                                    {InstanceMethod("free", &DeviceBuffer::Free),
                                     InstanceAccessor("bytes", &DeviceBuffer::GetBytes, nullptr),
                                     InstanceAccessor("freed", &DeviceBuffer::GetFreed, nullptr)});
  auto* data = new Constructors{Napi::Persistent(ctor)};
  env.SetInstanceData<Constructors>(data);  // deleted with the environment
  exports.Set("DeviceBuffer", ctor);
}

DeviceBuffer* DeviceBuffer::From(const Napi::Value& v) {
  if (!v.IsObject() || v.IsTypedArray() || v.IsArray()) return nullptr;
  Constructors* c = v.Env().GetInstanceData<Constructors>();
  if (!c || !v.As<Napi::Object>().InstanceOf(c->device_buffer.Value())) return nullptr;
  return Unwrap(v.As<Napi::Object>());
}

DeviceBuffer::DeviceBuffer(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DeviceBuffer>(info), env_(info.Env()) {
  Args args(info.Env());
  bytes_ = args.Index(info[0], "bytes");
  std::string kind = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (kind == "float32") kind_ = ElementKind::kFloat32;
  else if (kind == "uint8") kind_ = ElementKind::kUint8;
  else if (kind == "int32") kind_ = ElementKind::kInt32;
  else if (kind == "uint16") kind_ = ElementKind::kUint16;
  else Throw(info.Env(), ErrorKind::kType, "ERR_SPARTAN_TYPE", "kind must be \"float32\", \"uint8\", \"int32\" or \"uint16\"");
  if (bytes_ % ElementSize(kind_)) Throw(info.Env(), ErrorKind::kRange, "ERR_SPARTAN_LENGTH", "bytes must be a multiple of the element size");
  spartan::Status st = spartan::cuda::malloc_device(bytes_, &ptr_);
  if (!st.ok()) throw StatusError(info.Env(), st, ArgNames{});
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), int64_t(bytes_));  // lets GC see the device memory
}

DeviceBuffer::~DeviceBuffer() { Release(); }

void DeviceBuffer::Release() {
  if (!ptr_) return;
  spartan::cuda::free_device(ptr_);
  ptr_ = nullptr;
  Napi::MemoryManagement::AdjustExternalMemory(env_, -int64_t(bytes_));
}

Napi::Value DeviceBuffer::Free(const Napi::CallbackInfo& info) {
  if (holds_ > 0) free_pending_ = true;  // a queued async call still reads or writes it
  else Release();
  return info.Env().Undefined();
}

void DeviceBuffer::Unhold() {
  if (--holds_ == 0 && free_pending_) {
    free_pending_ = false;
    Release();
  }
}
Napi::Value DeviceBuffer::GetBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(bytes_)); }
Napi::Value DeviceBuffer::GetFreed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), freed()); }

// ---- copies ----------------------------------------------------------------------

static DeviceBuffer* Live(Napi::Env env, const Napi::Value& v, const std::string& name) {
  DeviceBuffer* b = DeviceBuffer::From(v);
  if (!b) Throw(env, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be a DeviceBuffer");
  if (b->freed()) Throw(env, ErrorKind::kType, "ERR_SPARTAN_DISPOSED", name + " has been disposed");
  return b;
}

static Napi::Value Copy(const Napi::CallbackInfo& info, bool upload) {
  Napi::Env env = info.Env();
  Args args(env, /*allow_device=*/false, /*async=*/info[2].ToBoolean());
  DeviceBuffer* b = Live(env, info[0], "buffer");
  if (!info[1].IsTypedArray()) Throw(env, ErrorKind::kType, "ERR_SPARTAN_TYPE", "array must be a typed array");
  Napi::TypedArray t = info[1].As<Napi::TypedArray>();
  if (ViewOf(t).detached) Throw(env, ErrorKind::kType, "ERR_SPARTAN_DETACHED", "array is backed by a detached ArrayBuffer");
  if (t.ByteLength() != b->bytes())
    Throw(env, ErrorKind::kRange, "ERR_SPARTAN_LENGTH",
          "array has " + std::to_string(t.ByteLength()) + " bytes; the tensor has " + std::to_string(b->bytes()));
  args.arrays().push_back(t);
  args.arrays().push_back(info[0].As<Napi::Object>());
  void* host = args.HostData(t, "array", /*written=*/!upload);
  void* dev = b->data();
  const size_t n = b->bytes();
  return Run(env, args, ArgNames{},
             [=] { return upload ? spartan::cuda::copy_to_device(dev, host, n) : spartan::cuda::copy_to_host(host, dev, n); },
             [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
}

Napi::Value CudaUpload(const Napi::CallbackInfo& info) { return Copy(info, true); }
Napi::Value CudaDownload(const Napi::CallbackInfo& info) { return Copy(info, false); }

Napi::Value CudaCopy(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  DeviceBuffer* dst = Live(env, info[0], "dst");
  DeviceBuffer* src = Live(env, info[1], "src");
  if (dst->bytes() != src->bytes()) Throw(env, ErrorKind::kRange, "ERR_SPARTAN_LENGTH", "dst and src differ in size");
  spartan::Status st = spartan::cuda::copy_on_device(dst->data(), src->data(), src->bytes());
  if (!st.ok()) throw StatusError(env, st, ArgNames{});
  return env.Undefined();
}

Napi::Value CudaSynchronize(const Napi::CallbackInfo& info) {
  spartan::Status st = spartan::cuda::synchronize();
  if (!st.ok()) throw StatusError(info.Env(), st, ArgNames{});
  return info.Env().Undefined();
}

}  // namespace spartan_addon
