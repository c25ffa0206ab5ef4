#include "run.h"

#include <exception>
#include <new>
#include <string>

#include "device_buffer.h"

namespace spartan_addon {
namespace {

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, Args& args, ArgNames names, Work work, Finish finish)
      : Napi::AsyncWorker(env, "spartan"), deferred_(Napi::Promise::Deferred::New(env)), copies_(args.TakeCopies()),
        names_(names), work_(std::move(work)), finish_(std::move(finish)) {
    for (auto& o : args.arrays()) {
      refs_.push_back(Napi::Persistent(o));
      if (DeviceBuffer* b = DeviceBuffer::From(o)) {  // device memory stays allocated until this call settles
        b->Hold();
        held_.push_back(b);
      }
    }
  }
  ~Worker() override {
    for (DeviceBuffer* b : held_) b->Unhold();  // main thread, after OnOK / OnError; refs_ still alive here
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      status_ = work_();
    } catch (const std::bad_alloc&) {  // the promise rejects, the process lives
      SetError("out of memory in the spartan kernels");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (!status_.ok()) {
      deferred_.Reject(StatusError(env, status_, names_).Value());
      return;
    }
    try {  // anything thrown here must settle the promise, not escape as an uncaught exception
      std::string lost;
      if (copies_ && !copies_->WriteBack(&lost)) {
        deferred_.Reject(MakeError(env, ErrorKind::kType, "ERR_SPARTAN_DETACHED",
                                   lost + " was detached or resized while the call ran; its result is lost").Value());
        return;
      }
      deferred_.Resolve(finish_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::bad_alloc&) {
      deferred_.Reject(MakeError(env, ErrorKind::kRuntime, "ERR_SPARTAN_OUT_OF_MEMORY", "out of memory finishing the call").Value());
    } catch (const std::exception& e) {
      deferred_.Reject(MakeError(env, ErrorKind::kRuntime, "ERR_SPARTAN_RUNTIME", e.what()).Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    Napi::HandleScope scope(Env());
    deferred_.Reject(MakeError(Env(), ErrorKind::kRuntime, "ERR_SPARTAN_OUT_OF_MEMORY", e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::unique_ptr<HostCopies> copies_;  // the host arrays the kernel works on (see host_copies.h)
  std::vector<Napi::ObjectReference> refs_;
  std::vector<DeviceBuffer*> held_;
  ArgNames names_;
  Work work_;
  Finish finish_;
  spartan::Status status_;
};

}  // namespace

Napi::Value Run(Napi::Env env, Args& args, ArgNames names, Work work, Finish finish) {
  if (args.async()) {
    auto* w = new Worker(env, args, names, std::move(work), std::move(finish));
    Napi::Promise p = w->Promise();
    w->Queue();
    return p;
  }
  spartan::Status st;
  try {
    st = work();
  } catch (const std::bad_alloc&) {
    throw MakeError(env, ErrorKind::kRuntime, "ERR_SPARTAN_OUT_OF_MEMORY", "out of memory in the spartan kernels");
  }
  if (!st.ok()) throw StatusError(env, st, names);
  return finish(env);
}

}  // namespace spartan_addon
