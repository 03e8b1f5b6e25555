# Third-party dependencies, all from Debian 12 packages (see docs/design.md for why each).
find_package(fmt REQUIRED)
find_package(Threads REQUIRED)

# LLVM 19 is the code generator of the JIT layers (codegen/, runtime/). Debian's llvm-19-dev
# ships libLLVM-19.so (LLVM_LINK_LLVM_DYLIB): link that one shared library (imported target
# `LLVM`) instead of mapping components (orcjit, native, passes, ...) to static archives.
find_package(LLVM 19.1 CONFIG REQUIRED HINTS /usr/lib/llvm-19/lib/cmake/llvm)
message(STATUS "kiln: LLVM ${LLVM_PACKAGE_VERSION} from ${LLVM_DIR}")
if(TARGET LLVM)
  set(KILN_LLVM_TARGET LLVM)
else()  # an LLVM built without the dylib: the components the CPU JIT needs
  llvm_map_components_to_libnames(KILN_LLVM_TARGET orcjit native passes ipo vectorize)
endif()
separate_arguments(KILN_LLVM_DEFINITIONS NATIVE_COMMAND "${LLVM_DEFINITIONS}")

# oneDNN 2.6 (libdnnl-dev) serves matmul and convolution on the CPU.
find_package(dnnl CONFIG QUIET)
if(TARGET DNNL::dnnl)
  set(KILN_DNNL_TARGET DNNL::dnnl)
else()
  find_library(KILN_DNNL_LIB NAMES dnnl REQUIRED)
  find_path(KILN_DNNL_INCLUDE oneapi/dnnl/dnnl.hpp REQUIRED)
  add_library(kiln_dnnl INTERFACE)
  target_link_libraries(kiln_dnnl INTERFACE ${KILN_DNNL_LIB})
  target_include_directories(kiln_dnnl SYSTEM INTERFACE ${KILN_DNNL_INCLUDE})
  set(KILN_DNNL_TARGET kiln_dnnl)
endif()

# The CUDA toolkit is optional at build time; the driver is loaded with dlopen at run time.
find_package(CUDAToolkit QUIET)
if(CUDAToolkit_FOUND)
  message(STATUS "kiln: CUDA toolkit ${CUDAToolkit_VERSION} found (headers only; the driver is dlopen'ed)")
endif()
