// The Python module dgm_fast._C. Importing it registers the ops (TORCH_LIBRARY blocks in the
// other translation units); the module itself only carries what is not a tensor op.
//
// It is written against CPython's limited API (Py_LIMITED_API, set by CMake's USE_SABI 3.10), so
// the one compiled file, _C.abi3.so, loads into every CPython >= 3.10. Nothing else in the
// extension touches Python: the ops reach Python through torch's dispatcher (torch.ops.dgm_fast).
#ifndef Py_LIMITED_API
#error "module.cpp is built against the limited API: CMake's Python_add_library(... USE_SABI 3.10)"
#endif
#include <Python.h>

#include <ATen/Parallel.h>

#include <exception>
#include <string>

#include "common/cpu_loops.h"
#include "common/cuda_unavailable.h"

#if !defined(DGM_FAST_VERSION) || !defined(DGM_FAST_TORCH_VERSION) || !defined(DGM_FAST_TORCH_CUDA) || \
    !defined(DGM_FAST_VARIANT)
#error "the build defines DGM_FAST_VERSION, DGM_FAST_TORCH_VERSION, DGM_FAST_TORCH_CUDA and DGM_FAST_VARIANT"
#endif
#ifndef DGM_FAST_CUDA_ARCHITECTURES
#define DGM_FAST_CUDA_ARCHITECTURES ""
#endif
#ifndef DGM_FAST_CUDA_TOOLKIT
#define DGM_FAST_CUDA_TOOLKIT ""
#endif

namespace {

#ifdef DGM_FAST_WITH_CUDA
constexpr bool kWithCuda = true;
#else
constexpr bool kWithCuda = false;
#endif

// Sets info[key] = value and drops the reference to value; false (with the Python error set)
// when value is null or the insertion fails.
bool set_item(PyObject* info, const char* key, PyObject* value) {
  if (value == nullptr) return false;
  const int failed = PyDict_SetItemString(info, key, value);
  Py_DECREF(value);
  return failed == 0;
}

PyObject* text(const std::string& s) { return PyUnicode_FromStringAndSize(s.data(), s.size()); }

PyObject* build_info(PyObject* /*module*/, PyObject* /*unused*/) {
  PyObject* info = PyDict_New();
  if (info == nullptr) return nullptr;
  try {
    const bool ok =
        set_item(info, "version", text(DGM_FAST_VERSION)) &&
        // What the binary needs, e.g. pt213cpu or pt213cu130 (CMakeLists.txt).
        set_item(info, "variant", text(DGM_FAST_VARIANT)) &&
        set_item(info, "torch_version", text(DGM_FAST_TORCH_VERSION)) &&
        // torch.version.cuda of the torch built against ("" for a CPU torch).
        set_item(info, "torch_cuda", text(DGM_FAST_TORCH_CUDA)) &&
        set_item(info, "cuda", PyBool_FromLong(kWithCuda)) &&
        set_item(info, "cuda_architectures", text(DGM_FAST_CUDA_ARCHITECTURES)) &&
        set_item(info, "cuda_toolkit", text(DGM_FAST_CUDA_TOOLKIT)) &&
        set_item(info, "cpu_isa", text(dgm_fast::cpu_isa())) &&
        set_item(info, "num_threads", PyLong_FromLong(at::get_num_threads())) &&
        set_item(info, "parallel_backend", text(at::get_parallel_info()));
    if (!ok) {
      Py_DECREF(info);
      return nullptr;
    }
  } catch (const std::exception& e) {  // no C++ exception may cross into the interpreter
    Py_DECREF(info);
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
  return info;
}

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "What this build of dgm_fast was compiled with."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "_C",
    "dgm_fast native kernels (ops are registered under torch.ops.dgm_fast)",
    -1,
    methods,
    nullptr,
    nullptr,
    nullptr,
    nullptr,
};

}  // namespace

PyMODINIT_FUNC PyInit__C() {
#ifndef DGM_FAST_WITH_CUDA
  try {
    dgm_fast::register_cuda_unavailable_kernels();  // after every op's static registration
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_ImportError, e.what());
    return nullptr;
  }
#endif
  return PyModule_Create(&module_def);
}
