// What the binding needs of a typed array, for one over an ArrayBuffer or a SharedArrayBuffer
// alike. node-addon-api's TypedArray::ArrayBuffer() accessors (IsDetached, Data) go through
// napi_is_detached_arraybuffer / napi_get_arraybuffer_info, which take ArrayBuffers only and
// fail with "Invalid argument" for a SharedArrayBuffer.
#pragma once
#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace spartan_addon {

struct View {
  uint8_t* data;  // the first element (napi_get_typedarray_info adds the byte offset)
  size_t bytes;
  bool shared;    // over a SharedArrayBuffer: never detached, its memory lives while the view does
  bool detached;
};

View ViewOf(const Napi::TypedArray& t);

}  // namespace spartan_addon
