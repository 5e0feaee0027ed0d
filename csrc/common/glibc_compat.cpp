// libstdc++'s headers (GCC 11 and later, on glibc 2.32 and later) read glibc's
// __libc_single_threaded to skip atomic reference counting in single-threaded programs; the
// reference alone would make the wheel require glibc 2.32. This hidden definition, never set,
// answers "not single-threaded": the atomic path, always correct, as on an older glibc.
#include "common/glibc_compat.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GLIBC__)
extern "C" {
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;
}
#endif
