#include "errors.h"

#include "spartan/cuda_memory.h"

#include <cmath>
#include <sstream>

namespace spartan_addon {

Napi::Error MakeError(Napi::Env env, ErrorKind kind, const char* code, const std::string& message) {
  Napi::Error err = kind == ErrorKind::kType    ? Napi::TypeError::New(env, message)
                    : kind == ErrorKind::kRange ? Napi::RangeError::New(env, message)
                                                : Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void Throw(Napi::Env env, ErrorKind kind, const char* code, const std::string& message) {
  throw MakeError(env, kind, code, message);
}

static const char* ArgName(spartan::Arg a) {
  switch (a) {
    case spartan::Arg::kValues: return "values";
    case spartan::Arg::kCosts: return "costs";
    case spartan::Arg::kMask: return "mask";
    case spartan::Arg::kGrad: return "gradMask";
    case spartan::Arg::kGradW: return "gradW";
    case spartan::Arg::kTheta: return "theta";
    case spartan::Arg::kHard: return "hard";
    case spartan::Arg::kOut: return "out";
    case spartan::Arg::kRowPtr: return "rowPtr";
    case spartan::Arg::kColIdx: return "colIdx";
    case spartan::Arg::kX: return "x";
    case spartan::Arg::kBias: return "bias";
    case spartan::Arg::kBlock: return "block";
    case spartan::Arg::kDtype: return "dtype";
    default: return "argument";
  }
}

std::string ArgNames::array(spartan::Arg arg, size_t segment) const {
  std::ostringstream s;
  if (segmented) s << "segments[" << segment << "].";
  s << ArgName(arg);
  return s.str();
}

std::string ArgNames::element(spartan::Arg arg, size_t segment, size_t index) const {
  std::ostringstream s;
  s << array(arg, segment) << "[" << index << "]";
  return s.str();
}

std::string Num(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

Napi::Error StatusError(Napi::Env env, const spartan::Status& st, const ArgNames& names) {
  using spartan::Code;
  const std::string where = names.element(st.arg, st.segment, st.index);
  const std::string group = names.segmented ? " (group starting at segment " + std::to_string(st.segment) + ")" : "";
  switch (st.code) {
    case Code::kNonFinite:
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_NON_FINITE", where + " is " + Num(st.value) + "; every entry must be finite");
    case Code::kBadCost:
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_COST", (st.arg == spartan::Arg::kCosts && names.segmented ? where : std::string("cost")) + " is " + Num(st.value) + "; costs must be finite and > 0");
    case Code::kBudgetRange:
      if (std::isnan(st.value) || st.value < 0 || std::isinf(st.value))
        return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_BUDGET", "k is " + Num(st.value) + "; it must be a finite number >= 0" + group);
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_BUDGET", "k = " + Num(st.value) + " exceeds the total cost " + Num(st.limit) + group);
    case Code::kBetaRange:
      if (st.limit > 0)  // the solver's overflow check: beta times the largest |value / cost|
        return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_BETA", "beta " + Num(st.value) + " times the largest |value / cost|, " + Num(st.limit) +
                                                                         ", is beyond 1e300, where the solver's float64 sums overflow" + group);
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_BETA", "beta is " + Num(st.value) + "; it must be finite and > 0" + group);
    case Code::kMaskRange:
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_MASK_RANGE", where + " is " + Num(st.value) + "; mask entries must lie in [0, 1]");
    case Code::kAlias:
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_ALIAS", names.array(spartan::Arg::kOut, st.segment) + " overlaps an input that is read after it is written");
    case Code::kShape:
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_SHAPE",
                       st.arg == spartan::Arg::kNone ? std::string("a shape the kernel does not support")
                                                     : names.array(st.arg, st.segment) + " (" + Num(st.value) + ") is not supported here");
    case Code::kBadIndex:
      if (st.arg == spartan::Arg::kRowPtr)
        return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_SHAPE",
                         where + " is " + Num(st.value) + "; rowPtr must start at 0, never decrease and end at colIdx.length (bound " + Num(st.limit) + ")");
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_SHAPE",
                       where + " is " + Num(st.value) + "; block indices must lie in [0, " + Num(st.limit) + ")");
    case Code::kTileOverflow:
      return MakeError(env, ErrorKind::kRange, "ERR_SPARTAN_NON_FINITE",
                       "tile " + std::to_string(st.index) + " of " + names.array(st.arg, st.segment) + " (counted row-major): its entries are finite, but the sum of their absolute values, " +
                           Num(st.value) + ", is beyond float32's range");
    case Code::kCuda:
      return MakeError(env, ErrorKind::kRuntime, "ERR_SPARTAN_CUDA",
                       std::string("CUDA error ") + spartan::cuda::error_name(st.cuda_error) + ": " +
                           spartan::cuda::error_string(st.cuda_error));
    default:
      return MakeError(env, ErrorKind::kRuntime, "ERR_SPARTAN_INTERNAL", "internal error in the spartan kernels");
  }
}

}  // namespace spartan_addon
