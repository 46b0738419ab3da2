// oneDNN's C API (Debian libdnnl-dev 2.6) plus the two OpenMP calls the engine uses to set its thread count
// before it creates primitives (a primitive keeps the thread count it was created with).
#include <dnnl.h>
int omp_get_max_threads(void);
void omp_set_num_threads(int n);
