#include "views.h"

namespace spartan_addon {

View ViewOf(const Napi::TypedArray& t) {
  napi_env env = t.Env();
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer = nullptr;
  NAPI_THROW_IF_FAILED(env, napi_get_typedarray_info(env, t, &type, &length, &data, &buffer, &offset), View{});
  bool plain = false, detached = false;
  NAPI_THROW_IF_FAILED(env, napi_is_arraybuffer(env, buffer, &plain), View{});
  if (plain) NAPI_THROW_IF_FAILED(env, napi_is_detached_arraybuffer(env, buffer, &detached), View{});
  return View{static_cast<uint8_t*>(data), t.ByteLength(), !plain, detached};
}

}  // namespace spartan_addon
