#include "args.h"

#include <cmath>

#include "device_buffer.h"
#include "errors.h"
#include "views.h"
#include "../common/arg_checks.h"

namespace spartan_addon {

static const char* TypeNameOf(const Napi::Value& v) {
  if (v.IsTypedArray()) {
    switch (v.As<Napi::TypedArray>().TypedArrayType()) {
      case napi_int8_array: return "Int8Array";
      case napi_uint8_array: return "Uint8Array";
      case napi_uint8_clamped_array: return "Uint8ClampedArray";
      case napi_int16_array: return "Int16Array";
      case napi_uint16_array: return "Uint16Array";
      case napi_int32_array: return "Int32Array";
      case napi_uint32_array: return "Uint32Array";
      case napi_float32_array: return "Float32Array";
      case napi_float64_array: return "Float64Array";
      case napi_bigint64_array: return "BigInt64Array";
      case napi_biguint64_array: return "BigUint64Array";
      default: return "a typed array";
    }
  }
  if (v.IsArray()) return "an Array";
  if (v.IsArrayBuffer()) return "an ArrayBuffer";
  if (v.IsNull()) return "null";
  if (v.IsUndefined()) return "undefined";
  if (v.IsNumber()) return "a number";
  if (v.IsString()) return "a string";
  if (v.IsBoolean()) return "a boolean";
  return "an object";
}

Napi::TypedArray Args::Typed(const Napi::Value& v, const std::string& name, napi_typedarray_type type, const char* type_name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    Throw(env_, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be a " + type_name + " (got " + TypeNameOf(v) + ")");
  Napi::TypedArray t = v.As<Napi::TypedArray>();
  if (ViewOf(t).detached)
    Throw(env_, ErrorKind::kType, "ERR_SPARTAN_DETACHED", name + " is backed by a detached ArrayBuffer");
  Note(Place::kHost, name);
  arrays_.push_back(t);
  return t;
}

void* Args::HostData(const Napi::TypedArray& t, const std::string& name, bool written) {
  if (copies_) return copies_->Data(env_, t, name, written);
  return ViewOf(t).data;
}

void* Args::TypedData(const Napi::Value& v, const std::string& name, napi_typedarray_type type, const char* type_name,
                      bool written, size_t* len) {
  Napi::TypedArray t = Typed(v, name, type, type_name);
  *len = t.ElementLength();
  return HostData(t, name, written);
}

void Args::Note(Place p, const std::string& name) {
  if (place_ != Place::kUnknown && place_ != p)
    Throw(env_, ErrorKind::kType, "ERR_SPARTAN_DEVICE",
          name + (p == Place::kDevice ? " is a CUDA tensor but earlier arguments are host arrays"
                                      : " is a host array but earlier arguments are CUDA tensors") +
              "; every tensor of one call must live on one device");
  place_ = p;
}

DeviceBuffer* Args::Device(const Napi::Value& v, const std::string& name, ElementKind kind) {
  DeviceBuffer* b = DeviceBuffer::From(v);
  if (!b) return nullptr;
  if (!allow_device_)
    Throw(env_, ErrorKind::kType, "ERR_SPARTAN_DEVICE", name + " is a CUDA tensor, but this operation runs on the CPU only");
  if (b->freed()) Throw(env_, ErrorKind::kType, "ERR_SPARTAN_DISPOSED", name + " is a disposed tensor");
  if (b->kind() != kind)
    Throw(env_, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be a " + ElementName(kind) + " tensor (got " + ElementName(b->kind()) + ")");
  Note(Place::kDevice, name);
  arrays_.push_back(v.As<Napi::Object>());
  return b;
}

bool Args::IsUint8(const Napi::Value& v) {
  if (v.IsTypedArray()) return v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  DeviceBuffer* b = DeviceBuffer::From(v);
  return b && b->kind() == ElementKind::kUint8;
}

const float* Args::Float32(const Napi::Value& v, const std::string& name, size_t* len) {
  if (DeviceBuffer* b = Device(v, name, ElementKind::kFloat32)) {
    *len = b->length();
    return static_cast<const float*>(b->data());
  }
  return static_cast<const float*>(TypedData(v, name, napi_float32_array, "Float32Array", false, len));
}

float* Args::Float32Out(const Napi::Value& v, const std::string& name, size_t expected) {
  if (DeviceBuffer* b = Device(v, name, ElementKind::kFloat32)) {
    ExpectLength(b->length(), expected, name);
    return static_cast<float*>(b->data());
  }
  Napi::TypedArray t = Typed(v, name, napi_float32_array, "Float32Array");
  ExpectLength(t.ElementLength(), expected, name);  // before any copy
  return static_cast<float*>(HostData(t, name, true));
}

const uint8_t* Args::Uint8(const Napi::Value& v, const std::string& name, size_t* len) {
  if (DeviceBuffer* b = Device(v, name, ElementKind::kUint8)) {
    *len = b->length();
    return static_cast<const uint8_t*>(b->data());
  }
  return static_cast<const uint8_t*>(TypedData(v, name, napi_uint8_array, "Uint8Array", false, len));
}

uint8_t* Args::Uint8Out(const Napi::Value& v, const std::string& name, size_t expected) {
  if (DeviceBuffer* b = Device(v, name, ElementKind::kUint8)) {
    ExpectLength(b->length(), expected, name);
    return static_cast<uint8_t*>(b->data());
  }
  Napi::TypedArray t = Typed(v, name, napi_uint8_array, "Uint8Array");
  ExpectLength(t.ElementLength(), expected, name);  // before any copy
  return static_cast<uint8_t*>(HostData(t, name, true));
}

void Args::ExpectLength(size_t got, size_t expected, const std::string& name) {
  if (got != expected)
    Throw(env_, ErrorKind::kRange, "ERR_SPARTAN_LENGTH",
          name + " has length " + std::to_string(got) + "; expected " + std::to_string(expected));
}

spartan::Costs Args::Costs(const Napi::Value& v, const std::string& name, size_t n) {
  spartan::Costs c;
  if (v.IsUndefined() || v.IsNull()) return c;
  if (v.IsNumber()) {
    c.uniform = v.As<Napi::Number>().DoubleValue();
    if (!(c.uniform >= spartan::kMinUniformCost) || !std::isfinite(c.uniform))
      Throw(env_, ErrorKind::kRange, "ERR_SPARTAN_COST", name + " is " + Num(c.uniform) + "; a number cost must be finite and at least 1.4e-45 (the smallest float32)");
    return c;
  }
  size_t len = 0;
  if (!v.IsTypedArray() && !DeviceBuffer::From(v))
    Throw(env_, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be a Float32Array or a number (got " + TypeNameOf(v) + ")");
  c.data = Float32(v, name, &len);
  ExpectLength(len, n, name);
  return c;
}

double Args::Number(const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) Throw(env_, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be a number (got " + TypeNameOf(v) + ")");
  return v.As<Napi::Number>().DoubleValue();
}

size_t Args::Size(const Napi::Value& v, const std::string& name) {
  double d = Number(v, name);
  if (!(d >= 1) || d != std::floor(d) || d > 9007199254740991.0)
    Throw(env_, ErrorKind::kRange, "ERR_SPARTAN_SHAPE", name + " must be a positive integer (got " + std::to_string(d) + ")");
  return size_t(d);
}

spartan::BlockShape Args::Shape(const Napi::CallbackInfo& info, size_t at) {
  spartan::BlockShape s;
  s.rows = Size(info[at], "rows");
  s.cols = Size(info[at + 1], "cols");
  s.b0 = Size(info[at + 2], "block[0]");
  s.b1 = Size(info[at + 3], "block[1]");
  if (s.rows % s.b0 || s.cols % s.b1)
    Throw(env_, ErrorKind::kRange, "ERR_SPARTAN_SHAPE",
          "a " + std::to_string(s.rows) + "x" + std::to_string(s.cols) + " matrix does not divide into " +
              std::to_string(s.b0) + "x" + std::to_string(s.b1) + " blocks");
  if (s.rows > (size_t(1) << 53) / s.cols) Throw(env_, ErrorKind::kRange, "ERR_SPARTAN_SHAPE", "rows * cols is too large");
  return s;
}

size_t Args::Index(const Napi::Value& v, const std::string& name) {
  double d = Number(v, name);
  if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
    Throw(env_, ErrorKind::kRange, "ERR_SPARTAN_SHAPE", name + " must be an integer >= 0 (got " + std::to_string(d) + ")");
  return size_t(d);
}

Napi::Array Args::Array(const Napi::Value& v, const std::string& name) {
  if (!v.IsArray()) Throw(env_, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be an Array (got " + TypeNameOf(v) + ")");
  return v.As<Napi::Array>();
}

Napi::Object Args::Object(const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || v.IsTypedArray() || v.IsArray())
    Throw(env_, ErrorKind::kType, "ERR_SPARTAN_TYPE", name + " must be an object (got " + TypeNameOf(v) + ")");
  return v.As<Napi::Object>();
}

}  // namespace spartan_addon
