// Force-included into every C++ source on x86-64 Linux (CMakeLists.txt), so that the wheel runs
// on glibc 2.28, the floor of torch's own manylinux_2_28 wheels. glibc 2.29 gave exp and log new
// symbol versions (the same arithmetic; only the error-reporting wrapper changed), which a
// build on a newer glibc would otherwise require: bind to the versions every glibc has.
#pragma once

#if defined(__linux__) && __has_include(<features.h>)
#include <features.h>  // defines __GLIBC__ (nothing else is included yet)
#endif

#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__)
__asm__(".symver exp,exp@GLIBC_2.2.5");
__asm__(".symver log,log@GLIBC_2.2.5");
#endif
